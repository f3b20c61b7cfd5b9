package deliver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// BenchmarkSend is one delivery as the load command's receiver takes it: a
// POST of a 600-byte payload to a local server that answers 200 with no
// body, and its history entry, under a context of requestContexts as the
// dispatcher's workers send (since the twentieth round; a context of its
// own each before). Its allocations per delivery are most of a worker's
// (docs/benchmarks-history.md, "Fourteenth round"); -benchmem reports them.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s := NewSender(SenderParams{Version: "bench"})
	defer s.CloseIdleConnections()
	hook := &rule.Webhook{ID: "wh-1", Name: "bench", URI: srv.URL + "/d/0", Status: rule.Enabled}
	job := store.Job{ID: "delivery-1", WebhookID: hook.ID, EventID: "event-1", Action: "push",
		ContentType: "application/json", Payload: strings.Repeat("\x00", 600), Attempts: 1}
	requests := s.requestContexts(context.Background(), time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if _, out := s.Send(requests.get(), hook, job); out.Kind != Success {
			b.Fatalf("outcome %+v", out)
		}
	}
}
