package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/deliver"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// harness is regwebhook's parts wired as serve wires them — a real embedded
// store, the webhooks, the receiver, the delivery workers and the API —
// behind a real HTTP server on loopback. Every answer the API gives and
// every log line is kept for the test to search.
type harness struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	hooks *webhooks.Manager
	// handler is the API alone, for requests a loopback client cannot make.
	handler http.Handler
	srv     *httptest.Server
	logs    *logtest.Hook
	token   string

	mu      sync.Mutex
	answers []answer
	events  atomic.Int64
}

type options struct {
	token  string
	config []*rule.Webhook // the config file's webhooks
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	ctx := context.Background()
	log, logs := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	st := openStore(t, store.Limits{History: 100, DeadLetters: 100})
	t.Cleanup(func() { st.Close() })
	hooks := webhooks.New(st)
	for _, w := range o.config {
		w.Defaults()
	}
	if err := hooks.Load(ctx, o.config); err != nil {
		t.Fatal(err)
	}
	sender := deliver.NewSender(deliver.SenderParams{Version: "test", Timeout: 5 * time.Second})
	disp := deliver.New(deliver.Params{
		Queue:  st,
		Hooks:  hooks.Current,
		Sender: sender,
		// Three quick attempts, then a dead letter.
		Retry:         deliver.RetryPolicy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, MaxAttempts: 3, MaxAge: time.Hour},
		MaintainEvery: 50 * time.Millisecond,
		PollEvery:     50 * time.Millisecond,
		Log:           log.WithField("component", "deliver"),
	})
	recv := receive.New(receive.Params{
		Store: st, Hooks: hooks.Current, MaxBodyBytes: 1 << 20, DedupeTTL: time.Hour,
		Wake: disp.Wake, Log: log.WithField("component", "receive"),
	})
	r := mux.NewRouter()
	r.Handle("/v1/notifications", recv)
	handler := api.New(api.Params{
		Hooks: hooks, Records: st, Redeliveries: st, Pinger: sender, Token: o.token,
		Wake: disp.Wake, Log: log.WithField("component", "api"),
	})
	r.PathPrefix(api.Prefix).Handler(handler)
	h := &harness{t: t, ctx: ctx, st: st, hooks: hooks, handler: handler, logs: logs, token: o.token}
	h.srv = httptest.NewServer(r)
	t.Cleanup(h.srv.Close)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- disp.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("dispatcher: %v", err)
		}
	})
	return h
}

// answer is one answer of the API, kept for TestNoSecretLeaks.
type answer struct {
	call   string
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the answer's body into v, failing the test if it cannot.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("%s: decode %d answer: %v\n%s", a.call, a.status, err, a.body)
	}
}

// errorCode returns the code of an error answer, failing the test if the
// body is not {"error":{"code","message"}}.
func (a answer) errorCode(t *testing.T) string {
	t.Helper()
	var e api.ErrorResponse
	a.decode(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s: error answer without code or message: %s", a.call, a.body)
	}
	return e.Error.Code
}

// call is a request to make.
type call struct {
	method, path string
	body         string // sent when not empty
	header       http.Header
	host         string // the Host header, when not the server's address
	noAuth       bool   // leave out the token
}

// do makes a request as the CLI would: with the token when there is one, and
// Content-Type: application/json on every change.
func (h *harness) do(c call) answer {
	h.t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, h.srv.URL+c.path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if c.method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.token != "" && !c.noAuth {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	for k, v := range c.header {
		req.Header[k] = v // a nil value leaves the header out
	}
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read answer: %v", c.method, c.path, err)
	}
	a := answer{call: c.method + " " + c.path, status: resp.StatusCode, header: resp.Header, body: b}
	h.mu.Lock()
	h.answers = append(h.answers, a)
	h.mu.Unlock()
	return a
}

// want makes a call and checks its status; it returns the answer.
func (h *harness) want(status int, c call) answer {
	h.t.Helper()
	a := h.do(c)
	if a.status != status {
		h.t.Fatalf("%s: got %d, want %d\n%s", a.call, a.status, status, a.body)
	}
	return a
}

func get(path string) call         { return call{method: http.MethodGet, path: path} }
func del(path string) call         { return call{method: http.MethodDelete, path: path} }
func post(path, body string) call  { return call{method: http.MethodPost, path: path, body: body} }
func patch(path, body string) call { return call{method: http.MethodPatch, path: path, body: body} }
func hookPath(name string, more ...string) string {
	return api.Prefix + "/webhooks/" + name + strings.Join(more, "")
}

// create makes a webhook through the API from a JSON body.
func (h *harness) create(body string) api.Webhook {
	h.t.Helper()
	var w api.Webhook
	h.want(http.StatusCreated, post(api.Prefix+"/webhooks", body)).decode(h.t, &w)
	return w
}

// show returns what show answers for a webhook.
func (h *harness) show(name string) api.Webhook {
	h.t.Helper()
	var w api.Webhook
	h.want(http.StatusOK, get(hookPath(name))).decode(h.t, &w)
	return w
}

// push posts an envelope with one new manifest push of repo:tag, as the
// registry does, and checks that it was accepted.
func (h *harness) push(repo, tag string) {
	h.t.Helper()
	n := h.events.Add(1)
	body := fmt.Sprintf(`{"events":[{"id":"event-%d","timestamp":"2026-11-26T10:00:00Z","action":"push",
		"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064d","size":555,"length":555,
		"repository":%q,"url":"http://registry.example.com/v2/%s/manifests/%s","tag":%q},
		"request":{"id":"req-%d","addr":"127.0.0.1:1","host":"registry.example.com","method":"PUT","useragent":"test"}}]}`,
		n, n, repo, repo, tag, tag, n)
	resp, err := http.Post(h.srv.URL+"/v1/notifications", "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"accepted":1`)) {
		h.t.Fatalf("post envelope: %d %s", resp.StatusCode, b)
	}
}

// eventually polls cond until it holds, failing the test after 20 seconds.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// history returns a webhook's history through the API.
func (h *harness) history(name string) api.Events {
	h.t.Helper()
	var e api.Events
	h.want(http.StatusOK, get(hookPath(name, "/events"))).decode(h.t, &e)
	return e
}

// deadLetters returns a webhook's dead letters through the API.
func (h *harness) deadLetters(name string) api.DeadLetters {
	h.t.Helper()
	var d api.DeadLetters
	h.want(http.StatusOK, get(hookPath(name, "/deadletters"))).decode(h.t, &d)
	return d
}

// depth counts the jobs in the queue.
func (h *harness) depth() store.Depth {
	h.t.Helper()
	d, err := h.st.Depth(h.ctx, time.Now().Add(time.Hour))
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// openStore opens the store the API runs on: the embedded one, or Redis (on
// the shared server, under a prefix of its own) when REGWEBHOOK_TEST_STORE
// is redis. scripts/test runs this package once with each.
func openStore(t *testing.T, limits store.Limits) store.Store {
	t.Helper()
	var (
		st  store.Store
		err error
	)
	switch kind := os.Getenv("REGWEBHOOK_TEST_STORE"); kind {
	case "", "embedded":
		st, err = sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Sync: "normal", Limits: limits})
	case "redis":
		addr, prefix := redistest.Shared(t)
		st, err = redis.Open(context.Background(), redis.Options{Addr: addr, Prefix: prefix, Limits: limits})
	default:
		t.Fatalf("REGWEBHOOK_TEST_STORE=%q: want embedded or redis", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}
