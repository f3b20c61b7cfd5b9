package receive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// fuzzMaxBody is the receiver's body limit in FuzzReceiver: small, so that
// the fuzzer reaches 413 too.
const fuzzMaxBody = 64 << 10

// fuzzHooks take every event in each format, and some by scope, so that
// every kept event is matched and rendered.
func fuzzHooks(tb testing.TB) *rule.Set {
	tb.Helper()
	var hooks []*rule.Webhook
	for i, c := range []struct {
		scope  string
		format rule.Format
	}{
		{"", rule.ACR}, {"", rule.CloudEvents}, {"", rule.Envelope}, {"app:*", rule.ACR}, {"app:v1", rule.CloudEvents}, {"*/*:v?", rule.Envelope},
	} {
		w := &rule.Webhook{ID: "id" + string(rune('a'+i)), Name: "fuzzhook" + string(rune('a'+i)), URI: "http://127.0.0.1:1/",
			Scope: c.scope, Format: c.format, Actions: []event.Action{event.Push, event.Delete, event.Pull}}
		w.Defaults()
		if err := w.Validate(); err != nil {
			tb.Fatal(err)
		}
		hooks = append(hooks, w)
	}
	set, err := rule.NewSet(hooks)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// FuzzReceiver posts any body with any content type and Authorization to the
// receiver on a real embedded store, one store for the whole run. Whatever
// comes:
//   - the answer is 200, 400, 401, 413 or 415, never 5xx (the store stays
//     open), with a JSON body;
//   - a refusal is {"error":{"code","message"}} with the code of its status;
//   - a 200 counts every event of the envelope once: accepted + dropped is
//     the length of its events array.
func FuzzReceiver(f *testing.F) {
	const v2 = "application/vnd.docker.distribution.events.v2+json"
	cases, err := fixtures.All()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		for _, r := range c.Requests {
			f.Add([]byte(r.Body), r.Headers.Get("Content-Type"), "Bearer tok")
		}
	}
	for _, s := range []struct{ body, ct, auth string }{
		{`{"events":[]}`, "application/json; charset=utf-8", "Bearer tok"},
		{`{"events":[1,null,{},{"id":"a","action":"push","target":{"repository":"app"}}]}`, v2, "Bearer tok"},
		{`{"events":[{"id":"x","action":"push","target":{"repository":"app","size":1e400}}]}`, v2, "Bearer tok"},
		{`{"events":[{"id":"x","action":"push","target":{"repository":"app","size":"big"}}]}`, v2, "Bearer tok"},
		{`{"events":[],"events":{}}`, v2, "Bearer tok"},
		{`{"events":null}`, v2, "Bearer tok"},
		{`[` + strings.Repeat("[", 10001), v2, "Bearer tok"},
		{`{"events":[],"pad":"` + strings.Repeat("x", fuzzMaxBody) + `"}`, v2, "Bearer tok"},
		{"\xef\xbb\xbf{\"events\":[]}", v2, "Bearer tok"},
		{`{"events":[]}`, "text/plain", "Bearer tok"},
		{`{"events":[]}`, "application/json; charset=\"", "Bearer tok"},
		{`{"events":[]}`, v2, "Bearer to"},
		{`{"events":[]}`, v2, ""},
	} {
		f.Add([]byte(s.body), s.ct, s.auth)
	}

	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: f.TempDir(), Sync: "normal", Limits: store.Limits{History: 1, DeadLetters: 1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	log := logrus.New()
	log.SetOutput(io.Discard)
	hooks := fuzzHooks(f)
	h := receive.New(receive.Params{
		Store: st, Hooks: func() *rule.Set { return hooks }, Token: "tok",
		MaxBodyBytes: fuzzMaxBody, DedupeTTL: time.Hour, Log: log,
	})
	codes := map[int]string{400: "invalid", 401: "unauthorized", 413: "too_large", 415: "unsupported_media_type"}

	f.Fuzz(func(t *testing.T, body []byte, contentType, auth string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/notifications", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer %d with a body that is not JSON: %q", w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			var got struct{ Accepted, Dropped *int }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Accepted == nil || got.Dropped == nil {
				t.Fatalf("200 with body %s, want accepted and dropped", w.Body)
			}
			if n, ok := oracleEvents(body); !ok || *got.Accepted+*got.Dropped != n || *got.Accepted < 0 || *got.Dropped < 0 {
				t.Fatalf("200 %s for an envelope of %d events (is one: %v): %q", w.Body, n, ok, body)
			}
			return
		}
		code, ok := codes[w.Code]
		if !ok {
			t.Fatalf("answer %d %s to %q (Content-Type %q), want 200, 400, 401, 413 or 415", w.Code, w.Body, body, contentType)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
			t.Fatalf("answer %d %s, want error code %q with a message", w.Code, w.Body, code)
		}
	})
}

// oracleEvents decodes body on its own terms: is it an object with an
// "events" array, and how long is the array? Numbers stay text, as in the
// envelope's raw events.
func oracleEvents(body []byte) (int, bool) {
	var top map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return 0, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, false
	}
	events, ok := top["events"].([]any)
	return len(events), ok
}
