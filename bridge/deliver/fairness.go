package deliver

import (
	"math/bits"
	"sort"
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
)

// Fairness. Workers are shared by every webhook, and a request to a service
// URI that accepts connections and never answers holds its worker until
// delivery.timeout. So that no set of dead URIs can hold the workers the
// healthy ones need, the Dispatcher leases by these rules:
//
//  1. At most PerWebhook requests are in flight to one webhook.
//  2. A webhook is restricted while its last attempt failed (until one
//     succeeds) or while it has not yet succeeded once in this process (slow
//     start: a black hole looks healthy until its first time-out). A
//     restricted webhook gets one request in flight.
//  3. Restricted webhooks together hold at most half of Workers (at least
//     one), so webhooks that answer always find a worker. Once the half is
//     taken, a webhook not yet proven waits for a restricted request to end
//     (at worst delivery.timeout); with Workers ≥ 2·(dead webhooks + 1) it
//     never waits on them.
//  4. When workers are short, free workers are handed out one at a time,
//     round-robin over the webhooks with due jobs, starting after the webhook
//     served last, so one busy webhook cannot starve the others.
//
// A webhook is asked for jobs only when it may have due ones: it was woken,
// the earliest due time the store reported has come, or the periodic poll
// (jobs enqueued by other processes, leases reclaimed) marked it; and
// jobs handed off to it that wait for a worker (see handoff.go) go before
// its leases, within what the rules give it. Paused webhooks (Retry-After)
// and disabled ones are not asked. This state is in memory: each process
// keeps its own.

// hookState is what the scheduler knows of one webhook. Only the Run
// goroutine touches it.
type hookState struct {
	inFlight int
	reserved int // places reserved for hand-offs (see handoff.go)
	waiting  int // jobs handed off waiting for a request slot
	// leasedAt: when its jobs were last asked for; handedRun: waiting jobs
	// started in a row since a slot last went to its queue.
	leasedAt  time.Time
	handedRun int
	proven    bool // an attempt succeeded in this process
	failing   bool // the last attempt that ended failed
	paused    time.Time
	// check: the webhook may have due jobs the scheduler does not know of.
	check bool
	// next is the earliest due time of its queued jobs, when hasNext.
	next    time.Time
	hasNext bool
	// budget: the reservations it may take, its cell in handoffs.budget
	// while it is enabled (nil until it first is); guarded by handoffs.mu.
	budget *int
	// idx: its place in scheduler.hooks, -1 when not enabled; dirty: its
	// budget is to be worked out again (see scheduler.touch).
	idx   int
	dirty bool
}

// restricted reports whether the webhook gets one request in flight and
// counts against the restricted half of the workers.
func (s *hookState) restricted() bool { return !s.proven || s.failing }

// mayHaveDue reports whether asking the store for the webhook's jobs at now
// can find any.
func (s *hookState) mayHaveDue(now time.Time) bool {
	if s.paused.After(now) {
		return false
	}
	return s.check || (s.hasNext && !s.next.After(now))
}

// noteDue records that a job of the webhook is queued, due at t.
func (s *hookState) noteDue(t time.Time) {
	if !s.hasNext || t.Before(s.next) {
		s.next, s.hasNext = t, true
	}
}

// scheduler holds the per-webhook state and decides what to lease.
type scheduler struct {
	workers    int
	perWebhook int
	// restrictedCap is how many requests restricted webhooks may hold.
	restrictedCap int

	set   *rule.Set
	order []string // ids of the enabled webhooks, sorted
	// hooks are their states, in the same order. A turn of the loop looks
	// only at those marked in maybe (plan, nextEvent) or touched (publish):
	// with thousands of webhooks, walking them all was most of its time.
	hooks []*hookState
	state map[string]*hookState
	// busy: the states with requests in flight; held: those with places
	// reserved (both a few, whatever the number of webhooks).
	busy map[*hookState]struct{}
	held []*hookState
	cand []int // plan's scratch: indexes into hooks
	// maybe has bit i set when hooks[i] may want a turn: it is marked to
	// check, or has a due time, waiting jobs or a pause. Set wherever one
	// of those is, cleared by plan when none is left: a turn walks the few
	// webhooks with something to do, not all of them.
	maybe []uint64
	// touched: states whose budget changed this turn; all: every one's
	// (see publish).
	touched    []*hookState
	touchedAll bool
	inFlight   int
	reserved   int // workers reserved for hand-offs, in all
	lastServed string
}

func newScheduler(workers, perWebhook int) *scheduler {
	return &scheduler{
		workers:       workers,
		perWebhook:    perWebhook,
		restrictedCap: max(1, workers/2),
		state:         map[string]*hookState{},
		busy:          map[*hookState]struct{}{},
	}
}

// limit is how many requests may be in flight to the webhook.
func (s *scheduler) limit(st *hookState) int {
	if st.restricted() {
		return 1
	}
	return s.perWebhook
}

// refresh takes a new set of webhooks: webhooks that appear, or come back
// enabled, are checked; the state of deleted ones is dropped once nothing is
// in flight to them (their jobs went with them). It reports whether the set
// was new.
func (s *scheduler) refresh(set *rule.Set) bool {
	if set == s.set {
		return false
	}
	s.set = set
	s.order = s.order[:0]
	present := map[string]bool{}
	if set != nil {
		for _, h := range set.All() {
			present[h.ID] = true
			if h.Status != rule.Enabled {
				continue
			}
			s.order = append(s.order, h.ID)
		}
	}
	sort.Strings(s.order)
	for _, st := range s.state {
		st.idx = -1
	}
	s.hooks = s.hooks[:0]
	for i, id := range s.order {
		st := s.get(id)
		st.check, st.idx = true, i
		s.hooks = append(s.hooks, st)
	}
	for id, st := range s.state {
		if !present[id] && st.inFlight == 0 && st.reserved == 0 && st.waiting == 0 {
			delete(s.state, id)
		}
	}
	s.maybe = make([]uint64, (len(s.hooks)+63)/64)
	s.markAll()
	s.touchedAll = true
	return true
}

// mark notes that st may want a turn.
func (s *scheduler) mark(st *hookState) {
	if st.idx >= 0 {
		s.maybe[st.idx/64] |= 1 << (st.idx % 64)
	}
}

// markAll notes that every enabled webhook may want a turn.
func (s *scheduler) markAll() {
	for w := range s.maybe {
		s.maybe[w] = ^uint64(0)
	}
	if r := len(s.hooks) % 64; r != 0 {
		s.maybe[len(s.maybe)-1] = 1<<r - 1
	}
}

// eachMaybe calls fn with the index of every webhook marked in maybe,
// starting at from and wrapping around.
func (s *scheduler) eachMaybe(from int, fn func(i int)) {
	scan := func(lo, hi int) {
		for w := lo / 64; w*64 < hi; w++ {
			word := s.maybe[w]
			if w == lo/64 {
				word &= ^uint64(0) << (lo % 64)
			}
			for ; word != 0; word &= word - 1 {
				i := w*64 + bits.TrailingZeros64(word)
				if i >= hi {
					return
				}
				fn(i)
			}
		}
	}
	scan(from, len(s.hooks))
	scan(0, from)
}

// touch notes that st's budget for hand-offs changed (its requests in
// flight, jobs waiting or health): publish works it out again.
func (s *scheduler) touch(st *hookState) {
	if !st.dirty {
		st.dirty = true
		s.touched = append(s.touched, st)
	}
}

// reserve takes in the workers reserved for hand-offs, by webhook: the plan
// leaves them free.
func (s *scheduler) reserve(reserved map[string]int) {
	s.reserved = 0
	for _, st := range s.held {
		st.reserved = 0
	}
	s.held = s.held[:0]
	for id, n := range reserved {
		st := s.get(id)
		st.reserved = n
		s.reserved += n
		s.held = append(s.held, st)
	}
}

func (s *scheduler) get(id string) *hookState {
	st, ok := s.state[id]
	if !ok {
		st = &hookState{check: true, idx: -1}
		s.state[id] = st
	}
	return st
}

// checkAll marks every enabled webhook for a look at the store.
func (s *scheduler) checkAll() {
	for _, st := range s.hooks {
		st.check = true
	}
	s.markAll()
}

// wake marks webhooks whose jobs were just committed, due by now (new jobs
// are due when they are made): the queue holds a job due no later than now.
func (s *scheduler) wake(ids map[string]bool, now time.Time) {
	for id := range ids {
		if st, ok := s.state[id]; ok {
			st.noteDue(now)
			s.mark(st)
		}
	}
}

// plan decides how many jobs to ask each webhook for at now, by the rules
// above; nil when there is nothing to ask.
func (s *scheduler) plan(now time.Time) map[string]int {
	free := s.workers - s.inFlight - s.reserved
	if free <= 0 || len(s.order) == 0 {
		return nil
	}
	restrictedFree := s.restrictedCap
	for st := range s.busy {
		if st.restricted() {
			restrictedFree -= st.inFlight
		}
	}
	// Round-robin: start after the webhook served last.
	n := len(s.order)
	start := sort.SearchStrings(s.order, s.lastServed)
	if start < n && s.order[start] == s.lastServed {
		start++
	}

	// One walk over the webhooks marked in maybe finds those that may get
	// a worker, in round-robin order; the rounds below go over those only.
	cand := s.cand[:0]
	s.eachMaybe(start%max(n, 1), func(i int) {
		st := s.hooks[i]
		if !st.paused.IsZero() && !st.paused.After(now) {
			st.paused = time.Time{} // over: hand-offs again
			s.touch(st)
		}
		if !st.check && !st.hasNext && st.waiting == 0 && st.paused.IsZero() {
			s.maybe[i/64] &^= 1 << (i % 64)
			return
		}
		if (st.mayHaveDue(now) || st.waiting > 0) && st.inFlight+st.reserved < s.limit(st) {
			cand = append(cand, i)
		}
	})
	s.cand = cand

	var want map[string]int
	for progress := true; progress && free > 0; {
		progress = false
		for _, i := range cand {
			if free == 0 {
				break
			}
			id, st := s.order[i], s.hooks[i]
			if st.inFlight+st.reserved+want[id] >= s.limit(st) {
				continue
			}
			if st.restricted() {
				if restrictedFree <= 0 {
					continue
				}
				restrictedFree--
			}
			if want == nil {
				want = map[string]int{}
			}
			want[id]++
			free--
			progress = true
			s.lastServed = id
		}
	}
	return want
}

// leased takes in what the store answered at now to a lease for want: the
// jobs still queued (next) and those leased.
func (s *scheduler) leased(now time.Time, want map[string]int, next map[string]time.Time) {
	for id := range want {
		st := s.get(id)
		st.leasedAt = now
		st.check = false
		st.next, st.hasNext = next[id]
		s.mark(st) // plan clears it when nothing is left
	}
}

// started counts a request in flight to the webhook.
func (s *scheduler) started(id string) {
	st := s.get(id)
	st.inFlight++
	s.inFlight++
	s.busy[st] = struct{}{}
	s.touch(st)
}

// ended counts a request that ended, and reports whether the webhook's
// health changed: it started failing, or recovered.
func (s *scheduler) ended(r result) (startedFailing, recovered bool) {
	s.inFlight--
	st := s.get(r.webhookID)
	if st.inFlight--; st.inFlight == 0 {
		delete(s.busy, st)
	}
	s.touch(st)
	defer s.mark(st)
	switch r.kind {
	case delivered:
		recovered = st.failing
		st.proven, st.failing = true, false
	case failed:
		startedFailing = !st.failing
		st.failing = true
		if r.pause.After(st.paused) {
			st.paused = r.pause
			st.check = true
		}
		if !r.due.IsZero() {
			st.noteDue(r.due)
		}
	case released:
		st.check = true
	}
	if st.inFlight == 0 && st.reserved == 0 && st.waiting == 0 && s.set != nil {
		if _, ok := s.set.ByID(r.webhookID); !ok {
			delete(s.state, r.webhookID)
		}
	}
	return startedFailing, recovered
}

// nextEvent is the earliest time after now at which a webhook's jobs come
// due or its pause ends; zero when none.
func (s *scheduler) nextEvent(now time.Time) time.Time {
	var t time.Time
	earlier := func(c time.Time) {
		if c.After(now) && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	s.eachMaybe(0, func(i int) {
		st := s.hooks[i]
		if st.paused.After(now) {
			earlier(st.paused)
			return
		}
		if st.hasNext {
			earlier(st.next)
		}
	})
	return t
}
