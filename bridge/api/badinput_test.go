package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// A bad-input table for the API, over its HTTP listener: the answer each
// create and update gets. None of them makes or changes a webhook, the API
// stays up, and a webhook made after them gets its delivery.
func TestBadInput(t *testing.T) {
	h := newHarness(t, options{})
	sink := hooktest.New(t)
	h.create(`{"name":"existing1","uri":"` + sink.URL() + `/hook","headers":{"X-Team":"platform"},"scope":"app:*"}`)
	const uri = `"uri":"http://a.example.com/"`
	// 20k deep fits in the 64 KiB of a request; 100k does not.
	deep, deeper := strings.Repeat("[", 20_000), strings.Repeat("[", 100_000)
	create := func(body string) call { return post(api.Prefix+"/webhooks", body) }
	update := func(body string) call { return patch(hookPath("existing1"), body) }

	tests := []struct {
		name   string
		call   call
		status int
		code   string
		field  string // the field named, for code invalid
		names  string // what the message names, besides the field
	}{
		{"truncated object", create(`{"name":"badhook1",` + uri), 400, api.CodeInvalid, "body", ""},
		{"truncated string", create(`{"name":"badh`), 400, api.CodeInvalid, "body", ""},
		{"empty body", create(``), 400, api.CodeInvalid, "body", ""},
		{"name a number", create(`{"name":1,` + uri + `}`), 400, api.CodeInvalid, "name", ""},
		{"uri a bool", create(`{"name":"badhook1","uri":true}`), 400, api.CodeInvalid, "uri", ""},
		{"headers a list", create(`{"name":"badhook1",` + uri + `,"headers":["X-A: 1"]}`), 400, api.CodeInvalid, "headers", ""},
		{"header value a list", create(`{"name":"badhook1",` + uri + `,"headers":{"X-A":["1"]}}`), 400, api.CodeInvalid, "headers", ""},
		{"actions a string", create(`{"name":"badhook1",` + uri + `,"actions":"push"}`), 400, api.CodeInvalid, "actions", ""},
		{"status a bool", create(`{"name":"badhook1",` + uri + `,"status":false}`), 400, api.CodeInvalid, "status", ""},
		{"scope an object", create(`{"name":"badhook1",` + uri + `,"scope":{}}`), 400, api.CodeInvalid, "scope", ""},
		{"insecureSkipVerify a string", create(`{"name":"badhook1",` + uri + `,"insecureSkipVerify":"true"}`), 400, api.CodeInvalid, "insecureSkipVerify", ""},
		{"name 1e400", create(`{"name":1e400,` + uri + `}`), 400, api.CodeInvalid, "name", ""},
		{"insecureSkipVerify 1e400", create(`{"name":"badhook1",` + uri + `,"insecureSkipVerify":1e400}`), 400, api.CodeInvalid, "insecureSkipVerify", ""},
		{"an action 2^64", create(`{"name":"badhook1",` + uri + `,"actions":[18446744073709551616]}`), 400, api.CodeInvalid, "actions", ""},
		{"a huge number in an unknown field", create(`{"name":"badhook1",` + uri + `,"retries":1e400}`), 400, api.CodeInvalid, "retries", ""},
		{"a huge number as the body", create(`1e400`), 400, api.CodeInvalid, "body", ""},
		{"invalid UTF-8 in the name", create(`{"name":"badhook1` + "\xff" + `",` + uri + `}`), 400, api.CodeInvalid, "name", ""},
		{"invalid UTF-8 in a header name", create(`{"name":"badhook1",` + uri + `,"headers":{"X-` + "\xff" + `":"1"}}`), 400, api.CodeInvalid, "headers", ""},
		{"invalid UTF-8 outside strings", create("{\xff}"), 400, api.CodeInvalid, "body", ""},
		{"a 10 MB body", create(`{"name":"badhook1",` + uri + `,"scope":"` + strings.Repeat("a", 10<<20) + `"}`), 413, api.CodeTooLarge, "", ""},
		{"100k [", create(deeper), 413, api.CodeTooLarge, "", ""},
		{"20k [", create(deep), 400, api.CodeInvalid, "body", ""},
		{"20k [ in headers", create(`{"name":"badhook1",` + uri + `,"headers":` + deep), 400, api.CodeInvalid, "body", ""},
		{"20k nested, closed, in headers", create(`{"name":"badhook1",` + uri + `,"headers":` + deep + strings.Repeat("]", 20_000) + `}`),
			400, api.CodeInvalid, "body", ""},
		{"unknown fields", create(`{"name":"badhook1",` + uri + `,"colour":"red"}`), 400, api.CodeInvalid, "colour", ""},
		{"empty object", create(`{}`), 400, api.CodeInvalid, "name", ""},
		{"null", create(`null`), 400, api.CodeInvalid, "body", ""},
		{"byte order mark", create("\xef\xbb\xbf{\"name\":\"badhook1\"," + uri + "}"), 400, api.CodeInvalid, "body", ""},
		{"name given twice", create(`{"name":"badhook1","name":"badhook2",` + uri + `}`), 400, api.CodeInvalid, "name", ""},
		{"a header given twice", create(`{"name":"badhook1",` + uri + `,"headers":{"X-A":"1","X-A":"2"}}`), 400, api.CodeInvalid, "headers", "X-A"},
		{"an empty key given twice", create(`{"name":"badhook1",` + uri + `,"":1,"":2}`), 400, api.CodeInvalid, "body", ""},
		{"update: status given twice", update(`{"status":"disabled","status":"enabled"}`), 400, api.CodeInvalid, "status", ""},
		{"update: truncated", update(`{"status":"disa`), 400, api.CodeInvalid, "body", ""},
		{"update: null", update(`null`), 400, api.CodeInvalid, "body", ""},
		{"update: a 10 MB body", update(`{"scope":"` + strings.Repeat("a", 10<<20) + `"}`), 413, api.CodeTooLarge, "", ""},
		{"update: 20k [", update(deep), 400, api.CodeInvalid, "body", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantError(t, h.do(tt.call), tt.status, tt.code, tt.field, tt.names) })
	}

	// None of them made or changed anything, and the API is still up.
	var l api.WebhookList
	h.want(http.StatusOK, get(api.Prefix+"/webhooks")).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].Name != "existing1" || l.Items[0].Status != "enabled" || l.Items[0].Scope != "app:*" {
		t.Errorf("after the bad input the webhooks are %+v, want existing1 as it was made", l.Items)
	}
	// A valid envelope after them is delivered.
	h.push("app", "v1")
	got := sink.WaitFor(t, 1, 20*time.Second)
	if p := got[0].Map(t); p["action"] != "push" || got[0].Header.Get("X-Team") != "platform" {
		t.Errorf("delivered %s with X-Team %q", got[0].Body, got[0].Header.Get("X-Team"))
	}
}

// Header safety: a custom header that would split the request (CR, LF), that
// no HTTP client sends (other control characters, a name that is not a
// token), or that is given twice under names that differ in case, is
// refused when the webhook is made or changed, with an answer that names
// headers and the header.
func TestHeaderSafety(t *testing.T) {
	h := newHarness(t, options{})
	h.create(`{"name":"existing1","uri":"http://a.example.com/","headers":{"X-Team":"platform"}}`)
	for _, c := range []struct {
		name    string
		headers string // JSON
		names   string
	}{
		{"CRLF in a value", `{"X-Team":"platform\r\nX-Injected: yes"}`, `X-Team`},
		{"LF in a value", `{"X-Team":"platform\nX-Injected: yes"}`, `X-Team`},
		{"CR in a value", `{"X-Team":"platform\r"}`, `X-Team`},
		{"NUL in a value", `{"X-Team":"a\u0000b"}`, `X-Team`},
		{"DEL in a value", `{"X-Team":"a\u007fb"}`, `X-Team`},
		{"a control character in a value", `{"X-Team":"a\u001bb"}`, `X-Team`},
		{"a space in a name", `{"X Team":"a"}`, `X Team`},
		{"a colon in a name", `{"X-Team:":"a"}`, `X-Team:`},
		{"CRLF in a name", `{"X-Team\r\nX-Injected":"a"}`, `X-Team\r\nX-Injected`},
		{"a name that is not ASCII", `{"X-Équipe":"a"}`, `X-Équipe`},
		{"an empty name", `{"":"a"}`, `""`},
		{"names that differ in case", `{"X-Team":"a","x-team":"b"}`, `x-team`},
		{"a reserved name", `{"X-Regwebhook-Delivery":"a"}`, `X-Regwebhook-Delivery`},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, h.do(post(api.Prefix+"/webhooks", `{"name":"newhook1","uri":"http://a.example.com/","headers":`+c.headers+`}`)),
				400, api.CodeInvalid, "headers", c.names)
			wantError(t, h.do(patch(hookPath("existing1"), `{"headers":`+c.headers+`}`)), 400, api.CodeInvalid, "headers", c.names)
		})
	}
	// A tab is allowed in a value.
	h.want(http.StatusOK, patch(hookPath("existing1"), `{"headers":{"X-Team":"a\tb"}}`))

	var cfg api.Config
	h.want(http.StatusOK, get(hookPath("existing1", "/config"))).decode(t, &cfg)
	if diff := cmp.Diff(map[string]string{"X-Team": "a\tb"}, cfg.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	h.want(http.StatusNotFound, get(hookPath("newhook1")))
}

// wantError checks an error answer: its status, code, field, and that its
// message names the field and names.
func wantError(t *testing.T, a answer, status int, code, field, names string) {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("%s: answered %d %q, not JSON: %v", a.call, a.status, a.body, err)
	}
	if a.status != status || e.Error.Code != code || e.Error.Field != field || e.Error.Message == "" {
		t.Errorf("%s: answered %d %s, want %d with code %q, field %q", a.call, a.status, a.body, status, code, field)
	}
	if field != "" && field != "body" && !strings.Contains(e.Error.Message, field) {
		t.Errorf("%s: message %q does not name %q", a.call, e.Error.Message, field)
	}
	if names != "" && !strings.Contains(e.Error.Message, names) {
		t.Errorf("%s: message %q does not name %s", a.call, e.Error.Message, names)
	}
}
