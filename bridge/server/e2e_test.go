package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/server"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
	"github.com/regwebhook/regwebhook/internal/registrytest"
)

// start runs a regwebhook server on a free loopback port with cfg's
// webhooks and, unless cfg names another store, an embedded store in a
// temporary directory.
func start(t *testing.T, cfg *config.Config) *server.Server {
	t.Helper()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Store.Embedded.Path = t.TempDir()
	for _, w := range cfg.Webhooks {
		w.Defaults()
		w.Source = rule.FromConfig
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	if testing.Verbose() {
		log.SetOutput(testWriter{t})
	}
	srv, err := server.New(context.Background(), server.Params{Config: cfg, Log: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return srv
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// delivery describes a received webhook request by action and image.
func delivery(t *testing.T, r hooktest.Request) string {
	var p event.Event
	r.Decode(t, &p)
	s := string(p.Action) + " " + p.Target.Repository
	if p.Target.Tag != "" {
		s += ":" + p.Target.Tag
	}
	if p.Target.Digest != "" {
		s += "@" + p.Target.Digest
	}
	if len(p.Target.Tags) > 0 {
		s += " tags=" + strings.Join(p.Target.Tags, ",")
	}
	if p.Target.MediaType != "" {
		s += " " + p.Target.MediaType
	}
	return s
}

func deliveries(t *testing.T, h *hooktest.Receiver) []string {
	var out []string
	for _, r := range h.Requests() {
		out = append(out, delivery(t, r))
	}
	sort.Strings(out)
	return out
}

// A real registry pushes, tags and deletes; each webhook gets exactly what
// its scope and actions take, with its custom headers, and no blob events.
func TestEndToEnd(t *testing.T) {
	hooks := map[string]*hooktest.Receiver{}
	cfg := config.Default()
	add := func(name, scope string, headers map[string]string, actions ...event.Action) {
		hooks[name] = hooktest.New(t)
		cfg.Webhooks = append(cfg.Webhooks, &rule.Webhook{
			Name: name, URI: hooks[name].URL() + "/hook/" + name, Scope: scope, Headers: headers, Actions: actions,
		})
	}
	add("appalltags", "app:*", map[string]string{"Authorization": "Bearer hook-secret", "X-Team": "platform"})
	add("appv1only", "app:v1", nil)
	add("everything", "", nil)
	add("multialltags", "multi:*", nil)
	add("multiv1only", "multi:v1", nil)
	add("apppulls", "app:*", nil, event.Pull)
	cfg.Receiver.Token = "receiver-token"
	srv := start(t, cfg)
	reg := registrytest.Start(t, registrytest.Options{
		NotifyURL:   "http://" + srv.Addr() + "/v1/notifications",
		NotifyToken: "receiver-token",
	})

	a := reg.PushImage(t, "app", "v1")
	reg.Tag(t, "app", a, "v2") // a pull by digest, then a push of v2
	b := reg.PushImageByDigest(t, "app")
	idx, children := reg.PushIndex(t, "multi", "v1", 2)
	c := reg.PushImage(t, "app", "v3")
	reg.DeleteManifest(t, "app", a) // the digest delete, then tag deletes of v1 and v2
	reg.DeleteTag(t, "app", "v3")

	const (
		oci   = " application/vnd.oci.image.manifest.v1+json"
		index = " application/vnd.oci.image.index.v1+json"
	)
	want := map[string][]string{
		"appalltags": {
			"delete app:v1@" + a + oci,
			"delete app:v2@" + a + oci,
			"delete app:v3@" + c + oci,
			"delete app@" + a + " tags=v1,v2" + oci,
			"push app:v1@" + a + oci,
			"push app:v2@" + a + oci,
			"push app:v3@" + c + oci,
			"push app@" + b + oci,
		},
		"appv1only": {
			"delete app:v1@" + a + oci,
			"push app:v1@" + a + oci,
		},
		"multialltags": {
			"push multi:v1@" + idx + index,
			"push multi@" + children[0] + oci,
			"push multi@" + children[1] + oci,
		},
		"multiv1only": {
			"push multi:v1@" + idx + index,
		},
		"apppulls": {
			"pull app@" + a + oci, // Tag reads the manifest by digest
		},
	}
	want["everything"] = append(append([]string{}, want["appalltags"]...), want["multialltags"]...)
	for name, w := range want {
		sort.Strings(w)
		hooks[name].WaitFor(t, len(w), 30*time.Second)
	}
	// Everything expected has come; give stragglers the time the rest took,
	// then nothing more may have arrived.
	waitQueueEmpty(t, srv)
	for name, w := range want {
		if diff := cmp.Diff(w, deliveries(t, hooks[name])); diff != "" {
			t.Errorf("%s got (-want +got):\n%s", name, diff)
		}
	}
	for _, r := range hooks["appalltags"].Requests() {
		if r.Header.Get("Authorization") != "Bearer hook-secret" || r.Header.Get("X-Team") != "platform" {
			t.Errorf("custom headers missing: %v", r.Header)
		}
		if r.Header.Get("X-Regwebhook-Webhook") != "appalltags" || r.Header.Get("X-Regwebhook-Delivery") == "" ||
			r.Header.Get("X-Regwebhook-Event") == "" || r.Header.Get("Content-Type") != "application/json" ||
			!strings.HasPrefix(r.Header.Get("User-Agent"), "regwebhook/") {
			t.Errorf("regwebhook headers missing: %v", r.Header)
		}
		if r.Path != "/hook/appalltags" {
			t.Errorf("delivered to %s", r.Path)
		}
	}
	metrics := scrape(t, srv)
	for _, line := range []string{
		`regwebhook_events_received_total{action="push"} 7`,
		`regwebhook_events_received_total{action="delete"} 4`,
		`regwebhook_events_received_total{action="pull"} 1`,
		`regwebhook_deliveries_total{outcome="ok",webhook="appv1only"} 2`,
		`regwebhook_deliveries_total{outcome="ok",webhook="everything"} 11`,
		`regwebhook_queue_jobs{state="ready"} 0`,
		`regwebhook_queue_jobs{state="dead"} 0`,
	} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if !strings.Contains(metrics, `regwebhook_events_dropped_total{reason="blob"}`) {
		t.Error("/metrics does not count the dropped blob events")
	}
}

// scrape returns the server's /metrics text.
func scrape(t *testing.T, srv *server.Server) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitQueueEmpty waits until the server reports no job ready, delayed or
// leased.
func waitQueueEmpty(t *testing.T, srv *server.Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := srv.Depth(context.Background())
		if err == nil && d.Ready+d.Delayed+d.Leased == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty: %+v %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The receiver answers on the path with and without a trailing slash,
// never redirecting; health and readiness answer.
func TestRoutes(t *testing.T) {
	srv := start(t, config.Default())
	for _, path := range []string{"/v1/notifications", "/v1/notifications/"} {
		resp, err := http.Post("http://"+srv.Addr()+path, "application/json", strings.NewReader(`{"events":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"accepted":0,"dropped":0}` {
			t.Errorf("POST %s: %d %s", path, resp.StatusCode, body)
		}
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + srv.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d Location %q, want a redirect to the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/ui/"} {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

// The example registry config parses as the registry reads it, and its
// endpoint is regwebhook's receiver at the default address, with a token.
func TestExampleRegistryConfig(t *testing.T) {
	f, err := os.Open("../../examples/registry-config.yml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := configuration.Parse(f)
	if err != nil {
		t.Fatalf("the registry refuses examples/registry-config.yml: %v", err)
	}
	if n := len(cfg.Notifications.Endpoints); n != 1 {
		t.Fatalf("%d notification endpoints, want 1", n)
	}
	ep := cfg.Notifications.Endpoints[0]
	_, port, _ := strings.Cut(config.Default().HTTP.Addr, ":")
	if want := "http://127.0.0.1:" + port + "/v1/notifications"; ep.URL != want {
		t.Errorf("endpoint url %q, want %q", ep.URL, want)
	}
	if got := ep.Headers.Get("Authorization"); !strings.HasPrefix(got, "Bearer ") {
		t.Errorf("endpoint sends Authorization %q, want a bearer token", got)
	}
	if !cfg.Storage["delete"]["enabled"].(bool) {
		t.Error("deletes are not enabled: no delete webhooks would ever fire")
	}
}
