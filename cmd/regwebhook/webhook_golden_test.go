package main

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the commands print")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s\n(if the change is meant, go test -run %s -update rewrites the file)", path, diff, t.Name())
	}
}

// cannedAPI serves fixed answers of the admin API, in its types: the list
// in two pages, and one webhook's history. The table output is tested on
// these; the behaviour of the commands against the real API in
// webhook_e2e_test.go.
func cannedAPI(t *testing.T) *httptest.Server {
	t.Helper()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	hook := func(name, scope, uri string, actions ...event.Action) api.Webhook {
		return api.Webhook{Webhook: rule.Webhook{Name: name, URI: uri, Actions: actions, Status: rule.Enabled,
			Scope: scope, Format: rule.ACR, Source: rule.FromAPI}}
	}
	failing := hook("auditlog01", "", "https://audit.example.com/…", event.Push, event.Delete, event.Pull)
	failing.Format, failing.Source = rule.CloudEvents, rule.FromConfig
	failing.LastDelivery = &api.LastDelivery{ID: "d2", Time: at("2026-11-26T10:05:00.5Z"), Status: api.DeliveryFailed}
	since := at("2026-11-26T09:58:12Z")
	failing.FailingSince = &since
	failing.LastError = "no answer from https://audit.example.com/… within 10s"
	ci := hook("myacrwebhook01", "team/app:*", "http://ci.example.com/…", event.Push, event.Delete)
	ci.Headers = map[string]string{"Authorization": "***"}
	ci.Secret = "***"
	ci.LastDelivery = &api.LastDelivery{ID: "d1", Time: at("2026-11-26T10:00:01.123Z"), Status: api.DeliverySucceeded, StatusCode: 200}
	paused := hook("pausedhook", "team/*:v1.*", "http://10.0.0.7:8080", event.Push)
	paused.Status = rule.Disabled
	paused.LastDelivery = &api.LastDelivery{ID: "d3", Time: at("2026-11-25T23:00:00Z"), Status: api.DeliveryFailed, StatusCode: 503}
	paused.FailingSince = &paused.LastDelivery.Time
	// A reason phrase of the target's own, with a terminal escape in it.
	paused.LastError = "answered 503 \x1b[2JGone fishing"

	reqHeaders := history.MakeHeaders(map[string]string{
		"Authorization": "***", "Content-Type": "application/json", "User-Agent": "regwebhook/1.0.0",
		"X-Regwebhook-Delivery": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "X-Regwebhook-Event": "push",
		"X-Regwebhook-Webhook": "myacrwebhook01",
	})
	payload := `{"id":"01a218ff-f893-73b4-a099-3f5c0c3fff2b","timestamp":"2026-11-26T10:00:00.98Z","action":"push",` +
		`"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":401,"digest":"sha256:3b1c…","length":401,"repository":"team/app","tag":"v1"},` +
		`"request":{"id":"5e0b…","host":"registry.example.com","method":"PUT","useragent":"crane/0.20"}}`
	events := api.Events{Items: []history.Entry{
		{ID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", EventID: "01a218ff-f893-73b4-a099-3f5c0c3fff2b", Action: "push", Attempt: 3,
			Timestamp: at("2026-11-26T10:00:01.123Z"), DurationMs: 12,
			Request: history.Request{Method: "POST", RequestURI: "http://ci.example.com/…", Headers: reqHeaders, Content: payload},
			Response: &history.Response{StatusCode: 200, ReasonPhrase: "OK",
				Headers: history.MakeHeaders(map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Length": "3"}), Content: "ok\n"}},
		{ID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", EventID: "01a218ff-f893-73b4-a099-3f5c0c3fff2b", Action: "push", Attempt: 2,
			Timestamp: at("2026-11-26T09:59:59Z"), DurationMs: 1520, Error: "answered 503 Service Unavailable",
			Request: history.Request{Method: "POST", RequestURI: "http://ci.example.com/…", Headers: reqHeaders, Content: payload},
			Response: &history.Response{StatusCode: 503, ReasonPhrase: "Service Unavailable",
				Headers: history.MakeHeaders(map[string]string{"Retry-After": "2", "Content-Type": "application/json"}), Content: "{\n  \"error\": \"maintenance\"\n}\n"}},
		{ID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", EventID: "01a218ff-f893-73b4-a099-3f5c0c3fff2b", Action: "push", Attempt: 1,
			Timestamp: at("2026-11-26T09:59:48Z"), DurationMs: 10000, Error: "Post http://ci.example.com/…: context deadline exceeded",
			Request: history.Request{Method: "POST", RequestURI: "http://ci.example.com/…", Headers: reqHeaders, Content: payload}},
		{ID: "9b2f0c4e-1d3a-4c5b-8e7f-6a5b4c3d2e1f", EventID: "9b2f0c4e-1d3a-4c5b-8e7f-6a5b4c3d2e1f", Action: "ping", Attempt: 1,
			Timestamp: at("2026-11-26T09:50:00Z"), DurationMs: 3,
			Request: history.Request{Method: "POST", RequestURI: "http://ci.example.com/…",
				Headers: history.MakeHeaders(map[string]string{"Authorization": "***", "Content-Type": "application/json", "X-Regwebhook-Event": "ping"}),
				Content: `{"id":"9b2f0c4e-1d3a-4c5b-8e7f-6a5b4c3d2e1f","timestamp":"2026-11-26T09:50:00Z","action":"ping"}`},
			Response: &history.Response{StatusCode: 204, ReasonPhrase: "No Content", Headers: history.MakeHeaders(map[string]string{})}},
	}}

	answer := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(v); err != nil {
			t.Errorf("encode %T: %v", v, err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		switch after := r.URL.Query().Get("after"); after {
		case "":
			answer(w, api.WebhookList{Items: []api.Webhook{failing, ci}, Next: ci.Name})
		case ci.Name:
			answer(w, api.WebhookList{Items: []api.Webhook{paused}})
		default:
			t.Errorf("list asked for the page after %q", after)
		}
	})
	mux.HandleFunc("GET /api/v1/webhooks/myacrwebhook01/events", func(w http.ResponseWriter, r *http.Request) {
		answer(w, events)
	})
	for _, h := range []api.Webhook{failing, ci, paused} {
		mux.HandleFunc("GET /api/v1/webhooks/"+h.Name, func(w http.ResponseWriter, r *http.Request) { answer(w, h) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// The tables of list (every page), list-events and show, as golden files.
func TestWebhookTables(t *testing.T) {
	srv := cannedAPI(t)
	t.Setenv(envServer, srv.URL)
	golden(t, "list.golden", cliOK(t, "webhook", "list"))
	golden(t, "list-events.golden", cliOK(t, "webhook", "list-events", "--name", "myacrwebhook01"))
	// show: a failing webhook says since when and why, a healthy one does
	// not; an escape sequence from the target is shown quoted.
	var shown strings.Builder
	for _, name := range []string{"auditlog01", "myacrwebhook01", "pausedhook"} {
		shown.WriteString(cliOK(t, "webhook", "show", "--name", name, "--output", "table"))
		shown.WriteString("\n")
	}
	golden(t, "show.golden", shown.String())

	// JSON: the items of every page, as one list.
	var hooks []map[string]any
	cliJSON(t, &hooks, "webhook", "list", "--output", "json")
	var names []string
	for _, h := range hooks {
		names = append(names, h["name"].(string))
	}
	if diff := cmp.Diff([]string{"auditlog01", "myacrwebhook01", "pausedhook"}, names); diff != "" {
		t.Errorf("list --output json (-want +got):\n%s", diff)
	}
}

// An answer that is not the API's (a proxy's error page) and a server that
// is not there are errors of one line that say where and what.
func TestWebhookServerErrors(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html>\n<body>502 Bad Gateway</body>\n</html>\n"))
	}))
	defer proxy.Close()
	cliFails(t, 1, "regwebhook: GET "+proxy.URL+"/api/v1/webhooks/hookname answered 502 Bad Gateway, not from regwebhook's API: <html> <body>502 Bad Gateway</body> </html>\n",
		"webhook", "show", "--name", "hookname", "--server", proxy.URL)

	gone := freeAddr(t)
	r := cliFails(t, 1, "regwebhook: Get \"http://"+gone+"/api/v1/webhooks/hookname\": dial tcp "+gone+": connect: connection refused"+
		" (is regwebhook serve running there? --server or $REGWEBHOOK_SERVER says where)\n",
		"webhook", "show", "--name", "hookname", "--server", gone)
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
}
