package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// Hand-off. The receiver of this process may commit a job already leased to
// this process (store.HandoffTx) and give it to the Dispatcher in memory,
// which delivers it at once: no Lease call, and on Redis none of the
// queue's indexes, for most jobs when webhooks keep up. The receiver first
// reserves a worker for each such job, so that the fairness rules hold as
// for leased jobs: only a webhook that is proven, not failing, not paused,
// and has no queued job due (as far as this process knows: a hand-off must
// not overtake older jobs) gets reservations, up to its free requests.
//
// The scheduler publishes what may be reserved at the end of each turn,
// and takes reservations back into its own counts at the start of the next
// (no reservation is made while a turn runs: its plan and the reservations
// could take the same worker).

// handoffs is what the receiving goroutines and the Run goroutine share.
type handoffs struct {
	mu       sync.Mutex
	open     bool           // reservations may be made: between turns
	budget   map[string]int // free requests a reservation may take, by webhook
	free     int            // and free workers in all
	reserved map[string]int // reservations not yet handed or given back
	handed   []store.Lease  // handed, not yet started
	stopped  bool           // Run has ended: hand-offs are released
}

// Reserve takes a free worker for a job of the webhook that the caller is
// about to commit leased to this process, for a lease of the returned
// length. It fails when the fairness rules leave no worker for it, or the
// webhook may have older jobs due. A reservation ends with Hand (the job
// committed) or Unreserve (not committed, or not leased).
func (d *Dispatcher) Reserve(webhookID string) (lease time.Duration, ok bool) {
	h := &d.ho
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open || h.free <= 0 || h.budget[webhookID] <= 0 {
		return 0, false
	}
	h.budget[webhookID]--
	h.free--
	h.reserved[webhookID]++
	return d.lease, true
}

// Unreserve gives back n reservations of the webhook.
func (d *Dispatcher) Unreserve(webhookID string, n int) {
	if n <= 0 {
		return
	}
	h := &d.ho
	h.mu.Lock()
	if h.reserved[webhookID] -= n; h.reserved[webhookID] <= 0 {
		delete(h.reserved, webhookID)
	}
	if h.open {
		h.budget[webhookID] += n
		h.free += n
	}
	h.mu.Unlock()
	d.wakeLoop()
}

// Hand gives the Dispatcher reserved jobs, leased to this process by their
// commit, to deliver. Once Run has ended it releases them instead, so that
// another process (or the next run) delivers them without waiting for
// their leases to run out.
func (d *Dispatcher) Hand(leases []store.Lease) {
	if len(leases) == 0 {
		return
	}
	h := &d.ho
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		d.releaseAll(leases)
		return
	}
	h.handed = append(h.handed, leases...)
	h.mu.Unlock()
	d.wakeLoop()
}

// wakeLoop makes the Run goroutine take a turn.
func (d *Dispatcher) wakeLoop() {
	select {
	case d.wakeCh <- struct{}{}:
	default:
	}
}

// takeHanded closes reservations for the turn, starts a worker for each job
// handed, and counts the reservations still out in the scheduler's plan.
func (d *Dispatcher) takeHanded(work context.Context) {
	h := &d.ho
	h.mu.Lock()
	h.open = false
	handed := h.handed
	h.handed = nil
	for _, l := range handed {
		if h.reserved[l.WebhookID]--; h.reserved[l.WebhookID] <= 0 {
			delete(h.reserved, l.WebhookID)
		}
	}
	d.sched.reserve(h.reserved)
	h.mu.Unlock()
	d.metrics.handed.Add(float64(len(handed)))
	for _, l := range handed {
		d.start(work, l)
	}
}

// publish opens reservations until the next turn: for each webhook that may
// take one, its free requests less those reserved, and free workers.
func (d *Dispatcher) publish(now time.Time) {
	h := &d.ho
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.budget)
	total := 0
	for _, n := range h.reserved {
		total += n
	}
	h.free = d.sched.workers - d.sched.inFlight - total
	for _, id := range d.sched.order {
		st := d.sched.get(id)
		if st.restricted() || st.paused.After(now) || st.mayHaveDue(now) {
			continue
		}
		if n := d.sched.limit(st) - st.inFlight - h.reserved[id]; n > 0 {
			h.budget[id] = n
		}
	}
	h.open = true
}

// stopHandoffs ends hand-offs when Run ends, and releases the jobs handed
// but not started.
func (d *Dispatcher) stopHandoffs() {
	h := &d.ho
	h.mu.Lock()
	h.open, h.stopped = false, true
	handed := h.handed
	h.handed = nil
	h.mu.Unlock()
	d.releaseAll(handed)
}

// releaseAll puts jobs handed but never tried back in the queue.
func (d *Dispatcher) releaseAll(leases []store.Lease) {
	for _, l := range leases {
		d.release(context.Background(), d.log.WithField("delivery", l.ID), l)
	}
}
