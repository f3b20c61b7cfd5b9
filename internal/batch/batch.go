// Package batch runs concurrent calls together, as a database's group
// commit does: a call that arrives while a batch runs waits, and runs in the
// next batch with every other call that arrived meanwhile. Under load one
// commit (an fsync, a round trip to Redis) serves many calls; a call alone
// runs at once, as it would without batching. Each call returns only once
// its own batch has run, with its own result.
package batch

import (
	"sync"
	"time"
)

// Runner batches calls of one kind. Its zero value is not usable: make it
// with New.
type Runner[T any] struct {
	run    func(items []T) []error
	max    int
	linger time.Duration
	// canWait, when set, tells the calls that may linger: a batch lingers
	// only while all its calls can, and one that cannot ends the wait.
	canWait func(T) bool
	// full wakes a batch that lingers once limit calls are pending, or a
	// call that cannot wait arrives.
	full chan struct{}

	mu        sync.Mutex
	pending   []*call[T]
	running   bool
	lingering bool
	// flushed: Flush came while no batch lingered; the next does not.
	flushed bool

	// calls are calls done with, for the next Do: every ack and commit
	// makes one, and a call and its channel were two allocations.
	calls sync.Pool
}

type call[T any] struct {
	item T
	err  error
	// done is sent to once: the call ran (lead false), or it is to run the
	// next batch (lead true).
	done chan struct{}
	lead bool
}

// release keeps c for a later Do. Its done is empty: each call is sent
// to once, and takes what it is sent, or is sent nothing when it leads
// from the start.
func (r *Runner[T]) release(c *call[T]) {
	var zero T
	c.item = zero
	r.calls.Put(c)
}

// New returns a Runner whose batches run (at most limit items each) with
// run, which returns one error per item, nil for those that succeeded.
// run is called by one goroutine at a time.
func New[T any](limit int, run func(items []T) []error) *Runner[T] {
	return &Runner[T]{run: run, max: max(1, limit)}
}

// NewLinger returns a Runner whose batches wait up to linger after their
// first call before they run, for more calls to join them (a full batch
// runs at once): for calls that may wait, such as acks that no one waits
// on, where each run has a cost of its own that fewer, larger batches save.
func NewLinger[T any](limit int, linger time.Duration, run func(items []T) []error) *Runner[T] {
	r := New(limit, run)
	r.linger = linger
	r.full = make(chan struct{}, 1)
	return r
}

// NewWaiting returns a Runner whose batches of calls that can wait (canWait
// true) wait up to linger after their first call for a call that cannot,
// and run with it; a batch with a call that cannot wait, or a full one,
// runs at once. For a store whose every batch is a commit: writes no one
// waits on (acks) then share the commit of the next write someone waits
// on, rather than making it wait behind a commit of their own.
func NewWaiting[T any](limit int, linger time.Duration, canWait func(T) bool, run func(items []T) []error) *Runner[T] {
	r := NewLinger(limit, linger, run)
	r.canWait = canWait
	return r
}

// mayLinger reports whether the pending calls may wait for more; r.mu is
// held.
func (r *Runner[T]) mayLinger() bool {
	if r.flushed {
		r.flushed = false
		return false
	}
	if r.linger <= 0 || len(r.pending) >= r.max {
		return false
	}
	if r.canWait != nil {
		for _, c := range r.pending {
			if !r.canWait(c.item) {
				return false
			}
		}
	}
	return true
}

// Flush ends the wait of the batch that lingers, which runs at once with
// the calls it has; when none lingers, the next batch to start does not
// wait. For a caller that knows no more calls are coming for now: one whose
// callers are all waiting for their batch, say.
func (r *Runner[T]) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full == nil {
		return // it never lingers
	}
	if !r.lingering {
		r.flushed = true
		return
	}
	select {
	case r.full <- struct{}{}:
	default:
	}
}

// Pending returns how many calls wait for the running batch to end.
func (r *Runner[T]) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Do runs item in a batch and returns its error. The calling goroutine may
// run the batch, its own item and others', and then hands the next batch to
// another waiting caller, so no caller runs batches for longer than its own.
func (r *Runner[T]) Do(item T) error {
	c, _ := r.calls.Get().(*call[T])
	if c == nil {
		c = &call[T]{done: make(chan struct{}, 1)}
	}
	c.item, c.err, c.lead = item, nil, false
	defer r.release(c)
	r.mu.Lock()
	r.pending = append(r.pending, c)
	if r.running {
		if r.lingering && (len(r.pending) >= r.max || r.canWait != nil && !r.canWait(item)) {
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
		r.mu.Unlock()
		<-c.done
		if !c.lead {
			return c.err
		}
		r.mu.Lock()
	}
	r.running = true
	if r.mayLinger() {
		r.lingering = true
		r.mu.Unlock()
		t := time.NewTimer(r.linger)
		select {
		case <-t.C:
		case <-r.full:
		}
		t.Stop()
		r.mu.Lock()
		r.lingering = false
		select { // a wake-up that came too late for the select above
		case <-r.full:
		default:
		}
	}
	// c leads: it is the oldest pending call, so it is in this batch.
	n := min(len(r.pending), r.max)
	calls := r.pending[:n:n]
	r.pending = append([]*call[T](nil), r.pending[n:]...)
	r.mu.Unlock()

	items := make([]T, n)
	for i, cl := range calls {
		items[i] = cl.item
	}
	errs := r.run(items)
	for i, cl := range calls {
		if i < len(errs) {
			cl.err = errs[i]
		}
	}

	r.mu.Lock()
	if len(r.pending) > 0 {
		next := r.pending[0]
		next.lead = true
		next.done <- struct{}{}
	} else {
		r.running = false
	}
	r.mu.Unlock()
	for _, cl := range calls {
		if cl != c {
			cl.done <- struct{}{}
		}
	}
	return c.err
}
