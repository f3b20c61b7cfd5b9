package deliver

import (
	"context"
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
// worker are pending: the receiver gets those, and one delivery per worker
// waiting for a slot, not the whole queue. Once acks commit, the rest is
// delivered, each job once.
func TestPendingAcksHoldBackDeliveries(t *testing.T) {
	rc := hooktest.New(t)
	h := newHarness(t, webhook("hookacks", rc.URL()))
	const jobs = 400
	h.enqueue("hookacks", jobs)
	st := &stalledAcks{Store: h.store, release: make(chan struct{})}
	p := h.params(time.Minute)
	p.Queue = st
	p.Workers, p.PerWebhook = 4, 4
	h.run(p)

	bound := (ackSlots + 1) * p.Workers
	rc.WaitFor(t, bound, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // time for more, were there no bound
	if n := rc.Count(); n != bound {
		t.Fatalf("received %d deliveries while acks did not commit, want %d", n, bound)
	}
	close(st.release)
	waitFor(t, "every job to be delivered and acked", func() bool { return h.depth() == store.Depth{} })
	if n := rc.Count(); n != jobs {
		t.Errorf("received %d deliveries, want %d", n, jobs)
	}
}
