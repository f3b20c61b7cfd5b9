package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/server"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
	"github.com/regwebhook/regwebhook/internal/registrytest"
)

// On either store, pushes of a real registry reach the webhook once each,
// and once the webhook has answered, the receiver hands jobs to the workers
// of its own process rather than queueing them (regwebhook_handoffs_total):
// the receiver's goroutines and the dispatcher's share the reservations,
// which a -race run of this test checks.
func TestHandsJobsOffToItsOwnWorkers(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			hook := hooktest.New(t)
			cfg := config.Default()
			if driver == "redis" {
				addr, prefix := redistest.Shared(t)
				cfg.Store.Driver = "redis"
				cfg.Store.Redis.Addr, cfg.Store.Redis.Prefix = addr, prefix
			}
			cfg.Webhooks = []*rule.Webhook{{Name: "ci", URI: hook.URL(), Scope: "app:*"}}
			srv := start(t, cfg)
			reg := registrytest.Start(t, registrytest.Options{NotifyURL: "http://" + srv.Addr() + "/v1/notifications"})

			const pushes = 12
			for i := range pushes {
				reg.PushImage(t, "app", fmt.Sprintf("v%d", i))
				hook.WaitFor(t, i+1, 30*time.Second) // each push is delivered before the next
			}
			time.Sleep(200 * time.Millisecond) // a duplicate would come now
			if got := hook.Count(); got != pushes {
				t.Errorf("%d deliveries of %d pushes, want one each", got, pushes)
			}
			handed := metric(t, srv, "regwebhook_handoffs_total")
			if handed < pushes/2 || handed > pushes {
				t.Errorf("%v of %d jobs handed off, want most after the first (the webhook proven) and no more than all", handed, pushes)
			}
		})
	}
}

// metric returns the value of an unlabelled series of the server's /metrics.
func metric(t *testing.T, srv *server.Server, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape(t, srv), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("/metrics line %q: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
