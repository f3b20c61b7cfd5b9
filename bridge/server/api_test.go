package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/server"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// The API is served on the server's one listener: a webhook made through it
// gets deliveries of the envelopes the registry posts, at once; one deleted
// through it takes its queued jobs with it.
func TestAPIWebhooksGetDeliveries(t *testing.T) {
	cfg := config.Default()
	cfg.Admin.Token = "admin-token"
	srv := start(t, cfg)
	base := "http://" + srv.Addr()
	apiCall := func(method, path, body string, want int) string {
		t.Helper()
		req, err := http.NewRequest(method, base+"/api/v1"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer admin-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return string(b)
	}
	notify := func(n int, repo, tag string) {
		t.Helper()
		body := fmt.Sprintf(`{"events":[{"id":"event-%d","timestamp":"2026-11-26T10:00:00Z","action":"push",
			"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064d","size":1,"length":1,
			"repository":%q,"tag":%q},"request":{"id":"r","host":"registry.example.com","method":"PUT"}}]}`, n, n, repo, tag)
		resp, err := http.Post(base+"/v1/notifications", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("notification %d: %d", n, resp.StatusCode)
		}
	}

	if list := apiCall("GET", "/webhooks", "", http.StatusOK); strings.TrimSpace(list) != `{"items":[]}` {
		t.Errorf("list at start: %s", list)
	}
	if resp, err := http.Get(base + "/api/v1/webhooks"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a call without the admin token: %d, want 401", resp.StatusCode)
	}
	delivered := hooktest.New(t)
	// A webhook whose target pauses it for an hour: its jobs stay queued.
	paused := hooktest.New(t, hooktest.Statuses(503), hooktest.RetryAfter("3600"))
	apiCall("POST", "/webhooks", `{"name":"madebyapi","uri":"`+delivered.URL()+`/hook","scope":"app:*"}`, http.StatusCreated)
	apiCall("POST", "/webhooks", `{"name":"pausedhook","uri":"`+paused.URL()+`/hook","scope":"app:*"}`, http.StatusCreated)

	notify(1, "app", "v1")
	notify(2, "other", "v1") // matches neither
	paused.WaitFor(t, 1, 10*time.Second)
	notify(3, "app", "v2")
	notify(4, "app", "v3")
	got := delivered.WaitFor(t, 3, 10*time.Second)
	for _, r := range got {
		if r.Header.Get("X-Regwebhook-Webhook") != "madebyapi" {
			t.Errorf("delivery with headers %v", r.Header)
		}
	}
	waitDepth(t, srv, func(d store.Depth) bool { return d.Ready+d.Delayed == 3 && d.Leased == 0 })

	ping := apiCall("POST", "/webhooks/madebyapi/ping", "", http.StatusOK)
	if !strings.Contains(ping, `"action":"ping"`) || !strings.Contains(ping, `"statusCode":200`) {
		t.Errorf("ping answered %s", ping)
	}
	apiCall("DELETE", "/webhooks/pausedhook", "", http.StatusNoContent)
	d, err := srv.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d != (store.Depth{}) {
		t.Errorf("after the delete the queue holds %+v, want nothing", d)
	}
	if list := apiCall("GET", "/webhooks", "", http.StatusOK); strings.Contains(list, "pausedhook") || !strings.Contains(list, "madebyapi") {
		t.Errorf("list after the delete: %s", list)
	}
	if n := paused.Count(); n != 1 {
		t.Errorf("the paused webhook's target got %d requests, want 1", n)
	}
}

// waitDepth polls the queue's depth until ok says so.
func waitDepth(t *testing.T, srv *server.Server, ok func(store.Depth) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := srv.Depth(context.Background())
		if err == nil && ok(d) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %+v (error %v) never came", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
