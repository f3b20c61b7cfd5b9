package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Hand-off. The receiver of this process may commit a job already leased to
// this process (store.HandoffTx) and give it to the Dispatcher in memory,
// which delivers it from there: no Lease call, and on Redis none of the
// queue's indexes. The receiver first reserves a place for each such job,
// and only a webhook that is proven, not failing and not paused gets one:
// the fairness rules hold as for leased jobs.
//
// A webhook takes reservations up to twice its requests in flight
// (PerWebhook), less those in flight, waiting and reserved: a job handed
// while every request slot of its webhook is taken waits in memory for
// one, so that under a backlog, when slots are rarely free, jobs are still
// handed off rather than queued and leased back. A job waits for about one
// round of its webhook's requests. Waiting jobs start through the
// scheduler's plan, in turn with the other webhooks (fairness rule 4), and
// a webhook's slot goes to its oldest due job, waiting or queued: to the
// queue when the earliest due time it is known to hold (a lease's Next, or
// a wake's time) is not after the oldest waiting job's, to the waiting job
// otherwise. Where that is unknown (a poll marked the webhook), one slot in
// waitingShare+1 asks the queue. So a job queued because a reservation ran
// out is not held back by the jobs handed off after it. (Until the tenth
// round of issue 7 waiting jobs went first but for one slot in four: under
// a sustained load whose reservations ran out for more than a quarter of
// the jobs, the queue grew for as long as the load lasted and its jobs
// waited for MaxQueueDelay.) Once a queued job of the webhook may have been
// due for MaxQueueDelay, or its queue was not looked at for as long, the
// queue goes first whatever it holds. A waiting job whose webhook is
// paused, fails, is disabled or deleted, or whose lease would run out
// before a request could end, goes back to the queue.
//
// The scheduler publishes what may be reserved at the end of each turn,
// and takes reservations back into its own counts at the start of the
// next. Reservations stay open while a turn runs: a job handed off waits
// until a turn starts it, so a reservation takes no worker the turn's plan
// could give away; what the turn starts meanwhile lets a webhook's places
// run over by at most one round of its requests until the next publish.
// (With reservations closed during turns, which under load run back to
// back, more jobs missed them and were queued: on the embedded store with
// 16 connections 69,200 of 80,000 were handed off, against 74,500 open.)

// waitingShare is how many waiting jobs a webhook starts in a row while
// its queue may hold due jobs of unknown age (a poll marked it), before one
// slot asks the queue: the lease's answer then tells the queue's earliest
// due time.
const waitingShare = 3

// waitingPerWorker bounds the jobs waiting in all, per worker: a waiting
// job holds its payload in memory. With 32 workers 256 jobs. (Under the
// load command's backlog, 16 connections and 40 webhooks on Redis, one per
// worker let 11 % of the jobs be handed off and eight 37 %, measured with
// an earlier rule for the queue's turn.)
const waitingPerWorker = 8

// handoffs is what the receiving goroutines and the Run goroutine share.
type handoffs struct {
	mu       sync.Mutex
	open     bool            // reservations may be made: from the first turn on
	budget   map[string]*int // reservations an enabled webhook may take: its hookState's cell
	free     int             // and reservations in all
	reserved map[string]int  // reservations not yet handed or given back
	handed   []store.Lease   // handed, not yet started
	spare    []store.Lease   // the Run goroutine's: handed's last array, emptied
	stopped  bool            // Run has ended: hand-offs are released
}

// Reserve takes a place for a job of the webhook that the caller is about
// to commit leased to this process, for a lease of the returned length. It
// fails when the fairness rules give the webhook no hand-offs, or it has as
// many in flight, waiting and reserved as it may. A reservation ends with
// Hand (the job committed) or Unreserve (not committed, or not leased).
func (d *Dispatcher) Reserve(webhookID string) (lease time.Duration, ok bool) {
	h := &d.ho
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.budget[webhookID]
	if !h.open || h.free <= 0 || c == nil || *c <= 0 {
		return 0, false
	}
	*c--
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
		if c := h.budget[webhookID]; c != nil {
			*c += n
		}
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

// takeHanded puts the jobs handed with those waiting for a request slot,
// and counts the reservations still out in the scheduler's plan.
func (d *Dispatcher) takeHanded() {
	h := &d.ho
	h.mu.Lock()
	// The two slices take turns: Hand appends to one while this empties the
	// other, rather than growing a new one every turn.
	handed := h.handed
	h.handed = h.spare[:0]
	for _, l := range handed {
		if h.reserved[l.WebhookID]--; h.reserved[l.WebhookID] <= 0 {
			delete(h.reserved, l.WebhookID)
		}
	}
	d.sched.reserve(h.reserved)
	h.mu.Unlock()
	d.metrics.handed.Add(float64(len(handed)))
	for _, l := range handed {
		d.setWaiting(l.WebhookID, append(d.waiting[l.WebhookID], l))
		d.sweepBy(l)
	}
	clear(handed) // no payloads kept alive by the spare
	h.spare = handed
}

// sweepBy moves sweepAt up to when l's lease gets too short to start a
// request.
func (d *Dispatcher) sweepBy(l store.Lease) {
	if at := l.Until.Add(-d.requests.longest()); d.sweepAt.IsZero() || at.Before(d.sweepAt) {
		d.sweepAt = at
	}
}

// sweepWaiting gives back to the queue the waiting jobs that must not wait
// for a slot any longer: their webhook is gone, disabled, paused or
// failing, or their lease would not outlast a request started now. It
// walks them only once one of those may be true (sweepAt, sweepAll), not
// on every turn: a turn follows every request that ends, and up to
// maxWaiting jobs wait.
func (d *Dispatcher) sweepWaiting(now time.Time) {
	if !d.sweepAll && (d.sweepAt.IsZero() || now.Before(d.sweepAt)) {
		return
	}
	d.sweepAll, d.sweepAt = false, time.Time{}
	for id, ls := range d.waiting {
		st := d.sched.get(id)
		var back []store.Lease
		if !d.enabled(id) || st.paused.After(now) || st.restricted() {
			back, ls = ls, nil
		} else {
			kept := ls[:0]
			for _, l := range ls {
				if l.Until.Sub(now) < d.requests.longest() {
					back = append(back, l)
				} else {
					kept = append(kept, l)
					d.sweepBy(l)
				}
			}
			ls = kept
		}
		if len(back) > 0 {
			d.setWaiting(id, ls)
			d.giveBack(back)
		}
	}
}

// enabled reports whether the webhook is in the scheduler's set, enabled.
func (d *Dispatcher) enabled(id string) bool {
	if d.sched.set == nil {
		return false
	}
	h, ok := d.sched.set.ByID(id)
	return ok && h.Status == rule.Enabled
}

// startWaiting starts, for each webhook of want, waiting jobs in place of
// leased ones where they are its oldest due jobs (see queueTurn), and takes
// them off want, with the webhooks that need no lease.
func (d *Dispatcher) startWaiting(work context.Context, want map[string]int, now time.Time) {
	for id, n := range want {
		st := d.sched.get(id)
		due := st.mayHaveDue(now)
		first := due && d.queueFirst(st, now)
		ls := d.waiting[id]
		lease := 0
		for range n {
			switch {
			case len(ls) > 0 && !(due && (first || queueTurn(st, ls[0]))):
				d.start(work, ls[0])
				ls = ls[1:]
				st.handedRun++
			case due:
				lease++
				st.handedRun = 0
			}
		}
		d.setWaiting(id, ls)
		if lease > 0 {
			want[id] = lease
		} else {
			delete(want, id)
		}
	}
}

// queueTurn reports whether a slot of a webhook that may have queued jobs
// due goes to its queue rather than to its oldest waiting job: the queue
// holds a job due no later than oldest, or what it holds is unknown and
// waitingShare waiting jobs went in a row. A turn that leases asks for all
// the slots it gives the queue at once, and the lease's answer tells the
// next turn what is left.
func queueTurn(st *hookState, oldest store.Lease) bool {
	if st.hasNext && !st.next.After(oldest.Due) {
		return true
	}
	return st.check && st.handedRun >= waitingShare
}

// queueFirst reports whether a webhook that may have queued jobs due leases
// them before starting its waiting hand-offs: when the earliest one it
// knows of has been due for MaxQueueDelay, or its queue was not looked at
// for as long (what is in it is unknown).
func (d *Dispatcher) queueFirst(st *hookState, now time.Time) bool {
	if now.Sub(st.leasedAt) >= d.maxQueueDelay {
		return true
	}
	return st.hasNext && now.Sub(st.next) >= d.maxQueueDelay
}

// setWaiting replaces the jobs waiting for the webhook's slots, and keeps
// the counts, the webhook's budget and its mark for a turn in step.
func (d *Dispatcher) setWaiting(id string, ls []store.Lease) {
	st := d.sched.get(id)
	d.nwaiting += len(ls) - st.waiting
	if st.waiting != len(ls) {
		d.sched.touch(st)
	}
	st.waiting = len(ls)
	if len(ls) == 0 {
		delete(d.waiting, id)
	} else {
		d.waiting[id] = ls
		d.sched.mark(st)
	}
}

// giveBack releases jobs never tried, off the Run goroutine.
func (d *Dispatcher) giveBack(ls []store.Lease) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.releaseAll(ls)
	}()
}

// publish sets what may be reserved until the next turn: for each webhook
// that may take hand-offs, twice its request slots less those in flight,
// waiting and reserved, and in all the free workers and maxWaiting less
// those waiting and reserved. Only the budgets of webhooks whose requests,
// waiting jobs or health changed since the last turn are worked out again
// (scheduler.touch): Reserve, Unreserve and Hand keep the others' right as
// they take and give back places. Each is written through the cell its
// state holds.
func (d *Dispatcher) publish(now time.Time) {
	h := &d.ho
	s := d.sched
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for _, n := range h.reserved {
		total += n
	}
	h.free = s.workers - s.inFlight + d.maxWaiting - d.nwaiting - total
	set := func(st *hookState) {
		st.dirty = false
		if st.idx < 0 {
			return // not enabled: no budget
		}
		if st.restricted() || st.paused.After(now) {
			*st.budget = 0
			return
		}
		*st.budget = 2*s.limit(st) - st.inFlight - st.waiting - h.reserved[s.order[st.idx]]
	}
	if s.touchedAll {
		for _, st := range s.hooks {
			set(st)
		}
	}
	for _, st := range s.touched {
		if st.dirty {
			set(st)
		}
	}
	s.touched, s.touchedAll = s.touched[:0], false
	h.open = true
}

// budgets gives every enabled webhook a budget cell, after the set of
// webhooks changed; a webhook no longer enabled gets no reservations.
func (d *Dispatcher) budgets() {
	h := &d.ho
	h.mu.Lock()
	defer h.mu.Unlock()
	h.budget = make(map[string]*int, len(d.sched.order))
	for i, id := range d.sched.order {
		st := d.sched.hooks[i]
		if st.budget == nil {
			st.budget = new(int)
		}
		h.budget[id] = st.budget
	}
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
	for id, ls := range d.waiting {
		handed = append(handed, ls...)
		d.setWaiting(id, nil)
	}
	d.releaseAll(handed)
}

// releaseAll puts jobs handed but never tried back in the queue.
func (d *Dispatcher) releaseAll(leases []store.Lease) {
	for _, l := range leases {
		d.release(d.log.WithField("delivery", l.ID), l)
	}
}
