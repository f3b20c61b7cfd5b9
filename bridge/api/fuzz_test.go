package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// codeStatus is the status of each error code (SPEC §5).
var codeStatus = map[string]int{
	api.CodeInvalid: 400, api.CodeUnauthorized: 401, api.CodeForbidden: 403, api.CodeNotFound: 404,
	api.CodeMethodNotAllowed: 405, api.CodeNameTaken: 409, api.CodeReadOnly: 409, api.CodeQueued: 409,
	api.CodeTooLarge: 413, api.CodeUnsupportedMedia: 415, api.CodeInternal: 500, api.CodeUnavailable: 503,
}

// fuzzAPI is the API's router on a real embedded store, called as a loopback
// client without a token.
type fuzzAPI struct {
	h http.Handler
}

func newFuzzAPI(tb testing.TB) *fuzzAPI {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: tb.TempDir(), Sync: "normal", Limits: store.Limits{History: 1, DeadLetters: 1}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	hooks := webhooks.New(st)
	cfg := fromConfig()
	cfg.Defaults()
	if err := hooks.Load(ctx, []*rule.Webhook{cfg}); err != nil {
		tb.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	return &fuzzAPI{h: api.New(api.Params{Hooks: hooks, Records: st, Redeliveries: st, Log: log})}
}

// do makes a call and returns the answer.
func (f *fuzzAPI) do(method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://localhost"+path, bytes.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// check checks an answer: one of the statuses allowed, a JSON body (but for
// 204), and for an error {"error":{"code","message"}} with a known code that
// goes with the status, and the field named for code invalid.
func check(t *testing.T, call string, w *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || w.Code == s
	}
	if !ok {
		t.Fatalf("%s: answered %d %s, want one of %v", call, w.Code, w.Body, allowed)
	}
	if w.Code == http.StatusNoContent {
		return
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" || !json.Valid(w.Body.Bytes()) {
		t.Fatalf("%s: answered %d with Content-Type %q and body %q, want JSON", call, w.Code, ct, w.Body)
	}
	if w.Code < 400 {
		return
	}
	var e api.ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" || codeStatus[e.Error.Code] != w.Code {
		t.Fatalf("%s: answered %d %s, want an error with a message and a code of that status", call, w.Code, w.Body)
	}
	if e.Error.Code == api.CodeInvalid && e.Error.Field == "" {
		t.Errorf("%s: answered %s, an invalid request without the field named", call, w.Body)
	}
}

// sendable reports whether an HTTP client sends a header with this name and
// value: a token name, and a value without control characters but tab.
func sendable(name, value string) bool {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r > '~' || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}) {
		return false
	}
	return !strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

// FuzzWebhookBody sends any body with any content type to create (POST
// /api/v1/webhooks) and to update (PATCH /api/v1/webhooks/{name}) through
// the API's router, on a real embedded store, one for the whole run:
//   - the answer is never 5xx: 201/200, or 400, 409, 413 or 415 with a JSON
//     error whose code goes with its status (check);
//   - a webhook made or changed is shown as it was answered, and its headers
//     can be sent (no CR, LF or other control character; token names).
func FuzzWebhookBody(f *testing.F) {
	for _, s := range []string{
		hookOne,
		`{"name":"newhook1","uri":"http://a.example.com/x?y=z"}`,
		`{"name":"newhook2","uri":"https://a.example.com/","actions":["push","delete","pull"],"status":"disabled",` +
			`"scope":"team/*:v1.*","format":"cloudevents","insecureSkipVerify":true,"headers":{"X-A":"1","Authorization":"Bearer x"}}`,
		`{"name":"newhook3","uri":"http://a.example.com/","format":"envelope","secret":"` + testSecret + " " + testSecret + `"}`,
		`{"status":"disabled"}`, `{"headers":{}}`, `{"secret":""}`, `{"scope":""}`, `{"actions":[]}`, `{"name":"fuzzbase1"}`,
		`{"headers":{"X-A":"a\r\nX-B: b"}}`, `{"headers":{"X-A":"a\u0000"}}`, `{"headers":{"Bad Name":"x"}}`, `{"headers":{"":"x"}}`,
		`{"headers":{"X-A":"***"}}`, `{"secret":"***"}`, `{"uri":"http://a.example.com/\u2028"}`, `{"uri":"http://[::1"}`,
		`{"name":"x","name":"newhook4","uri":"http://a.example.com/"}`, `{"insecureSkipVerify":1e400}`, `{"actions":"push"}`,
		``, `null`, `[]`, `{}`, `{"source":"api"}`, `{"name":1}`, "\xef\xbb\xbf{}", "{\"scope\":\"\xff\"}",
		strings.Repeat("[", 10000), `{"scope":"` + strings.Repeat("a", 64<<10) + `"}`,
	} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{"status":"enabled"}`), "application/json; charset=utf-8")
	f.Add([]byte(`name=newhook5&uri=http://a.example.com/`), "application/x-www-form-urlencoded")
	f.Add([]byte(`{"status":"enabled"}`), "text/plain")
	f.Add([]byte(`{"status":"enabled"}`), "")

	a := newFuzzAPI(f)
	base := api.Prefix + "/webhooks/fuzzbase1"
	if w := a.do(http.MethodPost, api.Prefix+"/webhooks", "application/json",
		[]byte(`{"name":"fuzzbase1","uri":"http://base.example.com/","headers":{"X-Base":"b"}}`)); w.Code != http.StatusCreated {
		f.Fatalf("create the webhook to update: %d %s", w.Code, w.Body)
	}

	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		w := a.do(http.MethodPost, api.Prefix+"/webhooks", contentType, body)
		check(t, "create", w, 201, 400, 409, 413, 415)
		if w.Code == http.StatusCreated {
			var made api.Webhook
			if err := json.Unmarshal(w.Body.Bytes(), &made); err != nil {
				t.Fatalf("create answered %s: %v", w.Body, err)
			}
			path := api.Prefix + "/webhooks/" + url.PathEscape(made.Name)
			a.shownAs(t, path, w.Body.Bytes())
			if made.Name != "fuzzbase1" {
				check(t, "delete", a.do(http.MethodDelete, path, "application/json", nil), 204)
			}
		}

		w = a.do(http.MethodPatch, base, contentType, body)
		check(t, "update", w, 200, 400, 413, 415)
		if w.Code == http.StatusOK {
			a.shownAs(t, base, w.Body.Bytes())
		}
	})
}

// shownAs checks that show answers what a change answered, and that the
// webhook's headers can be sent.
func (f *fuzzAPI) shownAs(t *testing.T, path string, answered []byte) {
	t.Helper()
	w := f.do(http.MethodGet, path, "", nil)
	check(t, "show", w, 200)
	if !bytes.Equal(w.Body.Bytes(), answered) {
		t.Errorf("show answered %s, the change %s", w.Body, answered)
	}
	w = f.do(http.MethodGet, path+"/config", "", nil)
	check(t, "get-config", w, 200)
	var c api.Config
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	for k, v := range c.Headers {
		if !sendable(k, v) {
			t.Errorf("webhook %s has header %q: %q, which no client sends", path, k, v)
		}
	}
}
