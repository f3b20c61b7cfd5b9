package api_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/api"
)

// A webhook whose target resets every connection shows, in show and list,
// since when it fails and the error of its last attempt, with the URI as
// scheme://host/… only: its path and query hold a secret. Once the target
// answers again the error goes.
func TestLastErrorOfAFailingWebhook(t *testing.T) {
	h := newHarness(t, options{})
	var broken atomic.Bool
	broken.Store(true)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !broken.Load() {
			return // 200
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a clean close
		}
		conn.Close()
	}))
	t.Cleanup(target.Close)
	h.create(`{"name":"resetting","uri":"` + target.URL + `/hooks/s3cret-path?token=s3cret-query","scope":"app:*"}`)

	h.push("app", "v1")
	// Three attempts, then a dead letter: the history stops changing.
	h.eventually("the delivery is a dead letter", func() bool { return len(h.deadLetters("resetting").Items) == 1 })
	w := h.show("resetting")
	wantPrefix := "Post " + target.URL + "/…: "
	if !strings.HasPrefix(w.LastError, wantPrefix) || strings.Contains(w.LastError, "s3cret") {
		t.Errorf("lastError %q, want a connection error that starts %q and shows no path or query", w.LastError, wantPrefix)
	}
	if w.FailingSince == nil || w.LastDelivery == nil || w.LastDelivery.StatusCode != 0 {
		t.Errorf("failingSince %v, lastDelivery %+v; want failing, with no status code (no answer)", w.FailingSince, w.LastDelivery)
	}
	if got := h.history("resetting").Items[0].Error; got != w.LastError {
		t.Errorf("lastError %q, want the newest history entry's error %q", w.LastError, got)
	}
	var list struct {
		Items []struct {
			Name      string `json:"name"`
			LastError string `json:"lastError"`
		} `json:"items"`
	}
	h.want(http.StatusOK, get(api.Prefix+"/webhooks")).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].LastError == "" {
		t.Errorf("list answered %+v, want the webhook with its lastError", list.Items)
	}

	broken.Store(false)
	h.push("app", "v2")
	h.eventually("the webhook recovers", func() bool {
		w := h.show("resetting")
		return w.LastDelivery != nil && w.LastDelivery.Status == api.DeliverySucceeded
	})
	if w := h.show("resetting"); w.LastError != "" || w.FailingSince != nil {
		t.Errorf("after a success: lastError %q, failingSince %v; want neither", w.LastError, w.FailingSince)
	}
}
