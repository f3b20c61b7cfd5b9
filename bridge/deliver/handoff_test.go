package deliver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// leaseAll leases the queued jobs of the webhook, as a commit that leases
// them to this process (store.HandoffTx) would have.
func (h *harness) leaseAll(hookID string, until time.Duration) []store.Lease {
	h.t.Helper()
	res, err := h.store.Lease(context.Background(), store.LeaseRequest{Now: time.Now(), For: until, Want: map[string]int{hookID: 100}})
	if err != nil {
		h.t.Fatalf("lease: %v", err)
	}
	return res.Leases
}

// reserveSoon reserves a worker for the webhook, waiting for the
// dispatcher to open reservations for it.
func reserveSoon(t *testing.T, d *Dispatcher, hookID string) time.Duration {
	t.Helper()
	var lease time.Duration
	waitFor(t, "a reservation for "+hookID, func() bool {
		var ok bool
		lease, ok = d.Reserve(hookID)
		return ok
	})
	return lease
}

// A webhook proven and idle takes reservations up to its requests in
// flight (PerWebhook); the job handed is delivered and acked like a leased
// one; a reservation given back is free again.
func TestHandOffDeliversAndBoundsReservations(t *testing.T) {
	recv := hooktest.New(t)
	h := newHarness(t, webhook("w", recv.URL()))
	d, _ := h.run(h.params(5 * time.Second))
	h.enqueue("w", 1)
	recv.WaitFor(t, 1, 10*time.Second) // proven

	if lease := reserveSoon(t, d, "w"); lease != 2*time.Minute {
		t.Errorf("reservation's lease = %s, want the dispatcher's 2m", lease)
	}
	for range 3 { // PerWebhook is 4
		if _, ok := d.Reserve("w"); !ok {
			t.Fatal("a reservation below PerWebhook was refused")
		}
	}
	if _, ok := d.Reserve("w"); ok {
		t.Fatal("a fifth reservation for a webhook of PerWebhook 4 was taken")
	}
	d.Unreserve("w", 3)
	if _, ok := d.Reserve("w"); !ok {
		t.Fatal("a reservation given back was not free again")
	}
	d.Unreserve("w", 1)

	ids := h.enqueue("w", 1)
	handed := h.leaseAll("w", time.Minute)
	if len(handed) != 1 || handed[0].ID != ids[0] {
		t.Fatalf("leased %v, want the job %s", handed, ids[0])
	}
	d.Hand(handed)
	got := recv.WaitFor(t, 2, 10*time.Second)
	if id := got[1].Header.Get(HeaderDelivery); id != ids[0] {
		t.Errorf("delivered %q, want the handed job %q", id, ids[0])
	}
	waitFor(t, "the handed job acked", func() bool { return h.depth() == store.Depth{} })
}

// No reservation for a webhook not yet proven (it may be a black hole) or
// failing: the fairness rules give those one request at a time, leased.
func TestHandOffRefusesWhereFairnessOrOrderForbid(t *testing.T) {
	failing := hooktest.New(t, hooktest.Statuses(http.StatusInternalServerError))
	fine := hooktest.New(t)
	h := newHarness(t, webhook("failing", failing.URL()), webhook("fine", fine.URL()), webhook("new", fine.URL()))
	p := h.params(5 * time.Second)
	d, _ := h.run(p)
	h.enqueue("failing", 1)
	h.enqueue("fine", 1)
	failing.WaitFor(t, 1, 10*time.Second)
	fine.WaitFor(t, 1, 10*time.Second)
	reserveSoon(t, d, "fine") // the dispatcher publishes reservations
	d.Unreserve("fine", 1)
	for range 20 {
		if _, ok := d.Reserve("new"); ok {
			t.Fatal("a webhook with no delivery yet got a reservation")
		}
		if _, ok := d.Reserve("failing"); ok {
			t.Fatal("a failing webhook got a reservation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A job handed once the dispatcher has stopped is put back in the queue, not
// left leased until its lease runs out.
func TestHandOffAfterStopReleases(t *testing.T) {
	recv := hooktest.New(t)
	h := newHarness(t, webhook("w", recv.URL()))
	d, stop := h.run(h.params(5 * time.Second))
	h.enqueue("w", 1)
	recv.WaitFor(t, 1, 10*time.Second)
	reserveSoon(t, d, "w")
	stop()
	if _, ok := d.Reserve("w"); ok {
		t.Error("a stopped dispatcher took a reservation")
	}
	h.enqueue("w", 1)
	d.Hand(h.leaseAll("w", time.Hour))
	if got := h.depth(); got != (store.Depth{Ready: 1}) {
		t.Errorf("depth after a hand-off to a stopped dispatcher = %+v, want the job ready", got)
	}
}
