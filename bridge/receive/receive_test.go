package receive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// env is a receiver on a real embedded store with a fixed set of webhooks.
type env struct {
	t     *testing.T
	store *sqlite.Store
	h     *receive.Handler
	hooks *rule.Set
	logs  *test.Hook
	reg   *prometheus.Registry
}

// testHooks covers each kind of scope: everything (pull too), one tag, every
// tag of a repository, and another repository.
func testHooks(t *testing.T) *rule.Set {
	mk := func(name, scope string, actions ...event.Action) *rule.Webhook {
		w := &rule.Webhook{ID: "id-" + name, Name: name, URI: "http://127.0.0.1:1/" + name, Scope: scope, Actions: actions}
		w.Defaults()
		return w
	}
	set, err := rule.NewSet([]*rule.Webhook{
		mk("everything", "", event.Push, event.Delete, event.Pull),
		mk("appv1only", "app:v1"),
		mk("appalltags", "app:*"),
		mk("multialltags", "multi:*"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func newEnv(t *testing.T, token string) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	e := &env{t: t, store: st, hooks: testHooks(t), logs: hook, reg: prometheus.NewRegistry()}
	e.h = receive.New(receive.Params{
		Store:        st,
		Hooks:        func() *rule.Set { return e.hooks },
		Token:        token,
		MaxBodyBytes: 1 << 20,
		DedupeTTL:    time.Hour,
		Log:          log,
		Registerer:   e.reg,
	})
	return e
}

// post sends a body as the registry does and returns the answer.
func (e *env) post(body []byte, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/notifications", bytes.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	if r.Header.Get("Content-Type") == "" && header == nil {
		r.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// postOK posts and expects 200 with the given counts.
func (e *env) postOK(body []byte, header http.Header, accepted, dropped int) {
	e.t.Helper()
	w := e.post(body, header)
	want := fmt.Sprintf(`{"accepted":%d,"dropped":%d}`, accepted, dropped)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != want {
		e.t.Fatalf("post: %d %s, want 200 %s", w.Code, w.Body, want)
	}
}

// job is what a webhook will be sent, in short.
type job struct {
	Hook, Action, Subject string
}

// jobs leases every queued job and describes it by webhook, action and
// image ("repo:tag", "repo@digest" with a short digest, or both).
func (e *env) jobs() []job {
	e.t.Helper()
	res, err := e.store.Lease(context.Background(), e.leaseAll())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []job
	for _, l := range res.Leases {
		var p event.Event
		if err := json.Unmarshal([]byte(l.Payload), &p); err != nil {
			e.t.Fatalf("payload of %s: %v", l.ID, err)
		}
		h, _ := e.hooks.ByID(l.WebhookID)
		out = append(out, job{h.Name, string(p.Action), subject(&p.Target)})
	}
	sort.Slice(out, func(i, j int) bool {
		return fmt.Sprint(out[i]) < fmt.Sprint(out[j])
	})
	return out
}

// leaseAll asks for every job of every webhook.
func (e *env) leaseAll() store.LeaseRequest {
	want := map[string]int{}
	for _, h := range e.hooks.All() {
		want[h.ID] = 1000
	}
	return store.LeaseRequest{Now: time.Now().Add(time.Hour), For: time.Minute, Want: want}
}

func subject(t *event.Target) string {
	s := t.Repository
	if t.Tag != "" {
		s += ":" + t.Tag
	}
	if t.Digest != "" {
		s += "@" + strings.TrimPrefix(t.Digest, "sha256:")[:8]
	}
	if len(t.Tags) > 0 {
		s += " tags=" + strings.Join(t.Tags, ",")
	}
	if t.MediaType != "" {
		s += " " + strings.TrimPrefix(t.MediaType, "application/vnd.")
	}
	return s
}

// replay posts every request of a fixture as the registry sent it.
func (e *env) replay(c fixtures.Case) (accepted, dropped int) {
	e.t.Helper()
	for i, r := range c.Requests {
		w := e.post(r.Body, r.Headers)
		var got struct{ Accepted, Dropped int }
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
			e.t.Fatalf("%s request %d: %d %s", c.Name, i, w.Code, w.Body)
		}
		accepted += got.Accepted
		dropped += got.Dropped
	}
	return accepted, dropped
}

func mustLoad(t *testing.T, name string) fixtures.Case {
	t.Helper()
	c, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counts returns the values of a counter vector by its one label.
func (e *env) counts(name string) map[string]int {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = int(m.GetCounter().GetValue())
		}
	}
	return out
}
