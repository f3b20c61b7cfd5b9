package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/api"
)

// With admin.token set, every call needs it, whoever calls; changes with a
// body need JSON, body-less ones need no content type.
func TestAuthWithToken(t *testing.T) {
	h := newHarness(t, options{token: "admin-s3cret"})
	h.create(hookOne)
	list := api.Prefix + "/webhooks"
	for _, c := range []struct {
		name   string
		call   call
		status int
		code   string
	}{
		{"no token", call{method: "GET", path: list, noAuth: true}, 401, api.CodeUnauthorized},
		{"wrong token", call{method: "GET", path: list, noAuth: true,
			header: http.Header{"Authorization": {"Bearer admin-s3cre"}}}, 401, api.CodeUnauthorized},
		{"token without Bearer", call{method: "GET", path: list, noAuth: true,
			header: http.Header{"Authorization": {"admin-s3cret"}}}, 401, api.CodeUnauthorized},
		{"basic auth", call{method: "GET", path: list, noAuth: true,
			header: http.Header{"Authorization": {"Basic YWRtaW4tczNjcmV0"}}}, 401, api.CodeUnauthorized},
		{"no token on an unknown call", call{method: "GET", path: api.Prefix + "/things", noAuth: true}, 401, api.CodeUnauthorized},
		{"no token on a change", call{method: "DELETE", path: hookPath("hookone"), noAuth: true}, 401, api.CodeUnauthorized},
		{"the token", get(list), 200, ""},
		{"the token, lower-case scheme", call{method: "GET", path: list, noAuth: true,
			header: http.Header{"Authorization": {"bearer admin-s3cret"}}}, 200, ""},
		{"another Host", withHost(get(list), "regwebhook.example.com"), 200, ""},
		{"a body that is not JSON", call{method: "PATCH", path: hookPath("hookone"), body: `{"status":"enabled"}`,
			header: http.Header{"Content-Type": {"text/plain"}}}, 415, api.CodeUnsupportedMedia},
		{"a body without a content type", call{method: "PATCH", path: hookPath("hookone"), body: `{"status":"enabled"}`,
			header: http.Header{"Content-Type": nil}}, 415, api.CodeUnsupportedMedia},
		{"no body, no content type", call{method: "POST", path: hookPath("hookone", "/deadletters/redeliver"),
			header: http.Header{"Content-Type": nil}}, 202, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(c.call)
			if a.status != c.status || (c.code != "" && a.errorCode(t) != c.code) {
				t.Errorf("got %d %s, want %d %s", a.status, a.body, c.status, c.code)
			}
			if c.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

// withHost makes the call with Host set: Go's client takes it from the
// request, not from its headers.
func withHost(c call, host string) call {
	c.host = host
	return c
}

// With no admin.token, only loopback clients that address the API by a
// loopback name are answered, and changes need JSON whether or not they
// have a body.
func TestAuthWithoutToken(t *testing.T) {
	h := newHarness(t, options{})
	h.create(hookOne)
	list := api.Prefix + "/webhooks"
	port := h.srv.URL[strings.LastIndex(h.srv.URL, ":")+1:]
	for _, c := range []struct {
		name   string
		call   call
		status int
		code   string
	}{
		{"127.0.0.1 with port", withHost(get(list), "127.0.0.1:"+port), 200, ""},
		{"127.0.0.1", withHost(get(list), "127.0.0.1"), 200, ""},
		{"localhost with port", withHost(get(list), "localhost:"+port), 200, ""},
		{"LocalHost", withHost(get(list), "LocalHost"), 200, ""},
		{"[::1] with port", withHost(get(list), "[::1]:"+port), 200, ""},
		{"[::1]", withHost(get(list), "[::1]"), 200, ""},
		{"another name (DNS rebinding)", withHost(get(list), "evil.example.com"), 403, api.CodeForbidden},
		{"another name with port", withHost(get(list), "evil.example.com:"+port), 403, api.CodeForbidden},
		{"a subdomain of localhost", withHost(get(list), "localhost.evil.example.com"), 403, api.CodeForbidden},
		{"another address", withHost(get(list), "192.0.2.1:"+port), 403, api.CodeForbidden},
		{"a token is not needed", call{method: "GET", path: list, header: http.Header{"Authorization": {"Bearer anything"}}}, 200, ""},
		{"a change without a body or content type", call{method: "POST", path: hookPath("hookone", "/deadletters/redeliver")}, 415,
			api.CodeUnsupportedMedia},
		{"a delete as a form", call{method: "DELETE", path: hookPath("hookone"),
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}, 415, api.CodeUnsupportedMedia},
		{"a change as text", call{method: "PATCH", path: hookPath("hookone"), body: `{"status":"enabled"}`,
			header: http.Header{"Content-Type": {"text/plain"}}}, 415, api.CodeUnsupportedMedia},
		{"a change as JSON with a charset", call{method: "PATCH", path: hookPath("hookone"), body: `{"status":"enabled"}`,
			header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}}, 200, ""},
		{"a body-less change as JSON", call{method: "POST", path: hookPath("hookone", "/deadletters/redeliver"),
			header: http.Header{"Content-Type": {"application/json"}}}, 202, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.call.header.Get("Content-Type") == "" && c.call.method != "GET" {
				c.call.header = http.Header{"Content-Type": nil}
			}
			a := h.do(c.call)
			if a.status != c.status || (c.code != "" && a.errorCode(t) != c.code) {
				t.Errorf("got %d %s, want %d %s", a.status, a.body, c.status, c.code)
			}
		})
	}
}

// With no admin.token, a client that is not on loopback is refused, whatever
// X-Forwarded-For claims. (The test's own client is on loopback, so these
// requests go to the handler directly.)
func TestAuthRemoteClients(t *testing.T) {
	h := newHarness(t, options{})
	for _, c := range []struct {
		remote string
		xff    string
		status int
	}{
		{"192.0.2.7:40000", "", 403},
		{"192.0.2.7:40000", "127.0.0.1", 403},
		{"[2001:db8::7]:40000", "::1", 403},
		{"10.0.0.1:1", "", 403},
		{"127.0.0.1:40000", "", 200},
		{"127.8.9.10:40000", "", 200},
		{"[::1]:40000", "", 200},
		{"[::ffff:127.0.0.1]:40000", "", 200},
		{"garbage", "", 403},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://localhost"+api.Prefix+"/webhooks", nil)
		req.RemoteAddr = c.remote
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
			req.Header.Set("X-Real-IP", c.xff)
			req.Header.Set("Forwarded", "for="+c.xff)
		}
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("from %s (X-Forwarded-For %q): got %d %s, want %d", c.remote, c.xff, rec.Code, rec.Body, c.status)
		}
		if c.status == 403 && !strings.Contains(rec.Body.String(), `"code":"forbidden"`) {
			t.Errorf("from %s: %s, want code forbidden", c.remote, rec.Body)
		}
	}
	// A token configured: a remote client with it is answered.
	ht := newHarness(t, options{token: "admin-s3cret"})
	req := httptest.NewRequest(http.MethodGet, "http://regwebhook.example.com"+api.Prefix+"/webhooks", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	req.Header.Set("Authorization", "Bearer admin-s3cret")
	rec := httptest.NewRecorder()
	ht.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("remote client with the token: got %d %s", rec.Code, rec.Body)
	}
}

// No answer carries CORS headers: a page of another site cannot read the API.
func TestNoCORS(t *testing.T) {
	h := newHarness(t, options{})
	h.create(hookOne)
	origin := http.Header{"Origin": {"https://evil.example.com"}, "Access-Control-Request-Method": {"DELETE"}}
	for _, c := range []call{
		{method: "OPTIONS", path: hookPath("hookone"), header: origin},
		{method: "GET", path: hookPath("hookone"), header: origin},
		{method: "GET", path: hookPath("hookone", "/config"), header: origin},
	} {
		a := h.do(c)
		for k := range a.header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s answered %s: %v", a.call, k, a.header[k])
			}
		}
	}
}
