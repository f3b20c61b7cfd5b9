package deliver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// stalledAcks is the real store whose acks wait until released: a store
// that commits acks slower than the workers deliver.
type stalledAcks struct {
	*sqlite.Store
	release chan struct{}
}

func (s *stalledAcks) Ack(ctx context.Context, l store.Lease, e history.Entry) error {
	<-s.release
	return s.Store.Ack(ctx, l, e)
}

// While acks do not commit, workers stop taking jobs once ackSlots acks per
// worker, and maxAcking in all, are pending: the receiver gets those, and
// one delivery per worker waiting for a slot, not the whole queue. Once
// acks commit, the rest is delivered, each job once.
func TestPendingAcksHoldBackDeliveries(t *testing.T) {
	for _, tc := range []struct {
		workers, jobs, bound int
	}{
		{workers: 4, jobs: 400, bound: (ackSlots + 1) * 4},
		// Past 32 workers the pending acks stop growing with them.
		{workers: 64, jobs: 1500, bound: maxAcking + 64},
	} {
		t.Run(fmt.Sprintf("%d workers", tc.workers), func(t *testing.T) {
			rc := hooktest.New(t)
			h := newHarness(t, webhook("hookacks", rc.URL()))
			h.enqueue("hookacks", tc.jobs)
			st := &stalledAcks{Store: h.store, release: make(chan struct{})}
			p := h.params(time.Minute)
			p.Queue = st
			p.Workers, p.PerWebhook = tc.workers, tc.workers
			h.run(p)

			rc.WaitFor(t, tc.bound, 30*time.Second)
			time.Sleep(300 * time.Millisecond) // time for more, were there no bound
			if n := rc.Count(); n != tc.bound {
				t.Fatalf("received %d deliveries while acks did not commit, want %d", n, tc.bound)
			}
			close(st.release)
			waitFor(t, "every job to be delivered and acked", func() bool { return h.depth() == store.Depth{} })
			if n := rc.Count(); n != tc.jobs {
				t.Errorf("received %d deliveries, want %d", n, tc.jobs)
			}
		})
	}
}
