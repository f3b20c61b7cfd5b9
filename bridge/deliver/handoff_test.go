package deliver

import (
	"context"
	"fmt"
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

// A webhook proven and idle takes reservations up to twice its requests in
// flight (PerWebhook: one round to start, one to wait); the job handed is
// delivered and acked like a leased one; a reservation given back is free
// again.
func TestHandOffDeliversAndBoundsReservations(t *testing.T) {
	recv := hooktest.New(t)
	h := newHarness(t, webhook("w", recv.URL()))
	d, _ := h.run(h.params(5 * time.Second))
	h.enqueue("w", 1)
	recv.WaitFor(t, 1, 10*time.Second) // proven

	if lease := reserveSoon(t, d, "w"); lease != 2*time.Minute {
		t.Errorf("reservation's lease = %s, want the dispatcher's 2m", lease)
	}
	for range 7 { // PerWebhook is 4
		if _, ok := d.Reserve("w"); !ok {
			t.Fatal("a reservation below twice PerWebhook was refused")
		}
	}
	if _, ok := d.Reserve("w"); ok {
		t.Fatal("a ninth reservation for a webhook of PerWebhook 4 was taken")
	}
	d.Unreserve("w", 7)
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

// provenHole runs a dispatcher for webhook w (with h.params(5s), changed by
// change), lets w succeed once at a receiver that answers, then points w
// at a receiver that holds every request until released.
func provenHole(t *testing.T, change func(*Params)) (*harness, *Dispatcher, *hooktest.Receiver) {
	t.Helper()
	fine, held := hooktest.New(t), hole(t)
	h := newHarness(t, webhook("w", fine.URL()))
	p := h.params(5 * time.Second)
	change(&p)
	d, _ := h.run(p)
	h.enqueue("w", 1)
	d.Wake("w") // not left to the poll: a test may set it to an hour
	fine.WaitFor(t, 1, 10*time.Second)
	waitFor(t, "the first job acked", func() bool { return h.depth() == store.Depth{} })
	h.setHooks(webhook("w", held.URL()))
	return h, d, held
}

// position is the index of each delivery id in the requests.
func position(reqs []hooktest.Request) map[string]int {
	at := map[string]int{}
	for i, id := range deliveryIDs(reqs) {
		at[id] = i
	}
	return at
}

// A webhook's slots go to its oldest due jobs, handed off and waiting for a
// slot or queued: jobs queued after those handed off go after them, jobs
// queued before them go first once the dispatcher knows what the queue
// holds (a poll asks it after waitingShare waiting jobs), and once a queued
// job may have been due for MaxQueueDelay the queue goes first whatever it
// holds. (One request in flight at a time, so that requests arrive in the
// order they start; the test hands the jobs itself, beyond what
// reservations would allow.)
func TestHandOffKeepsTheOldestDueFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		older bool          // the queued jobs were due a minute before those handed off
		delay time.Duration // MaxQueueDelay
		poll  time.Duration // PollEvery
		// most handed jobs delivered before the last queued one, and fewest
		most, least int
	}{
		{"queued after those handed", false, time.Hour, time.Hour, 8, 8},
		{"queued before those handed", true, time.Hour, 20 * time.Millisecond, 1 + waitingShare, 0},
		{"queued after, past MaxQueueDelay", false, 100 * time.Millisecond, time.Hour, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, d, held := provenHole(t, func(p *Params) { p.PerWebhook, p.MaxQueueDelay, p.PollEvery = 1, tc.delay, tc.poll })
			h.enqueue("w", 8)
			handed := h.leaseAll("w", time.Minute)
			d.Hand(handed)
			waitFor(t, "a request held", func() bool { return held.InFlight() == 1 })
			var queued []string
			if tc.older {
				queued = h.enqueueDue("w", 2, handed[0].Due.Add(-time.Minute)) // found by the poll
			} else {
				queued = h.enqueue("w", 2)
				d.Wake("w")
			}
			time.Sleep(200 * time.Millisecond) // past the shorter delay, and polls
			if got := h.depth(); got != (store.Depth{Ready: 2, Leased: 8}) {
				t.Fatalf("depth with a handed job in flight and 7 waiting = %+v, want 8 leased and the 2 queued ready", got)
			}

			held.Release()
			reqs := held.WaitFor(t, 10, 10*time.Second)
			if n := held.MaxInFlight(); n > 1 {
				t.Errorf("%d requests in flight to a webhook of PerWebhook 1", n)
			}
			waitFor(t, "every job acked", func() bool { return h.depth() == store.Depth{} })
			at := position(reqs)
			lastQueued := max(at[queued[0]], at[queued[1]])
			handedBefore := 0 // handed jobs delivered before the last queued one
			for _, l := range handed {
				if at[l.ID] < lastQueued {
					handedBefore++
				}
			}
			if handedBefore > tc.most || handedBefore < tc.least {
				t.Errorf("deliveries in order %v: %d jobs handed off went before the queued %v, want %d to %d", deliveryIDs(reqs), handedBefore, queued, tc.least, tc.most)
			}
		})
	}
}

// A job handed off whose lease would run out before a request could end
// goes back to the queue rather than waiting for a slot. (No maintenance
// in the test: it would queue the job again once its lease ran out.)
func TestHandOffWithTooShortALeaseGoesBack(t *testing.T) {
	h, d, held := provenHole(t, func(p *Params) { p.MaintainEvery = time.Hour })
	h.enqueue("w", 4)
	d.Hand(h.leaseAll("w", time.Minute))
	waitFor(t, "4 requests held", func() bool { return held.InFlight() == 4 })
	h.enqueue("w", 1)
	d.Hand(h.leaseAll("w", 4*time.Second)) // the sender's time-out is 5s
	waitFor(t, "the short-leased job queued again", func() bool { return h.depth() == store.Depth{Ready: 1, Leased: 4} })
	held.Release()
	held.WaitFor(t, 5, 10*time.Second)
	waitFor(t, "every job acked", func() bool { return h.depth() == store.Depth{} })
}

// A webhook that answers 503 with Retry-After takes no reservations while it
// is paused and failing, and takes them again once an attempt after the
// pause succeeds: its budget is worked out again when its requests end.
func TestHandOffStopsWhilePausedAndComesBack(t *testing.T) {
	recv := hooktest.New(t, hooktest.Statuses(http.StatusOK, http.StatusServiceUnavailable, http.StatusOK), hooktest.RetryAfter("1"))
	h := newHarness(t, webhook("w", recv.URL()))
	d, _ := h.run(h.params(5 * time.Second))
	h.enqueue("w", 1)
	recv.WaitFor(t, 1, 10*time.Second) // proven
	reserveSoon(t, d, "w")
	d.Unreserve("w", 1)

	h.enqueue("w", 1)
	recv.WaitFor(t, 2, 10*time.Second) // 503, Retry-After: 1
	waitFor(t, "reservations refused while paused", func() bool {
		if _, ok := d.Reserve("w"); ok {
			d.Unreserve("w", 1)
			return false
		}
		return true
	})
	recv.WaitFor(t, 3, 10*time.Second) // the retry after the pause: 200
	reserveSoon(t, d, "w")
	d.Unreserve("w", 1)
}

// Jobs waiting for a request slot go back to the queue once a request to
// their webhook fails (503 with Retry-After: paused and failing): they do
// not sit out the pause leased to this process. (No maintenance in the
// test: it would not touch leases of a minute.)
func TestHandOffWaitingGoBackWhenTheWebhookFails(t *testing.T) {
	failing := hooktest.New(t, hooktest.BlackHole(), hooktest.Statuses(http.StatusServiceUnavailable), hooktest.RetryAfter("3600"))
	h, d, _ := provenHole(t, func(p *Params) { p.PerWebhook, p.MaintainEvery = 1, time.Hour })
	h.setHooks(webhook("w", failing.URL()))
	h.enqueue("w", 4)
	d.Hand(h.leaseAll("w", time.Minute))
	waitFor(t, "a request held", func() bool { return failing.InFlight() == 1 })
	if got := h.depth(); got != (store.Depth{Leased: 4}) {
		t.Fatalf("depth with one request held and 3 jobs waiting = %+v, want 4 leased", got)
	}
	failing.Release()
	want := store.Depth{Ready: 3, Delayed: 1} // the one tried is due in an hour
	waitFor(t, fmt.Sprintf("depth %+v", want), func() bool { return h.depth() == want })
	if n := failing.Count(); n != 1 {
		t.Errorf("%d requests to a webhook paused for an hour, want 1", n)
	}
}
