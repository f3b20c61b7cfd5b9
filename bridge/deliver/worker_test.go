package deliver

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A call's context ends within after it was handed out, or up to every
// later; calls within every share one, a new one leaves the contexts
// handed out before it running until their deadline, and the parent's end
// ends them all.
func TestDeadlinesEndWithinTheirTimeAndAreShared(t *testing.T) {
	now := time.Now()
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := deadlines{parent: parent, within: storeTimeout, every: storeEvery, now: func() time.Time { return now }}
	check := func(label string, at time.Time) {
		t.Helper()
		now = at
		dl, ok := c.get().Deadline()
		if !ok {
			t.Fatalf("%s: no deadline", label)
		}
		if left := dl.Sub(at); left < storeTimeout || left > storeTimeout+storeEvery {
			t.Errorf("%s: ends %v after it was asked for, want [%v, %v]", label, left, storeTimeout, storeTimeout+storeEvery)
		}
	}
	start := now
	check("first", start)
	first := c.get()
	check("just before the renewal", start.Add(storeEvery-time.Millisecond))
	if c.get() != first {
		t.Errorf("a call within %v of the first got a context of its own", storeEvery)
	}
	check("at the renewal", start.Add(storeEvery))
	second := c.get()
	if second == first {
		t.Errorf("a call %v after the first got the first's context", storeEvery)
	}
	if err := first.Err(); err != nil {
		t.Errorf("the first context ended when the next was made: %v", err)
	}
	check("much later", start.Add(10*storeTimeout))
	cancel()
	for _, ctx := range []context.Context{first, second, c.get()} {
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("a context after its parent ended: %v, want %v", ctx.Err(), context.Canceled)
		}
	}
}

// With every 0 a call gets the parent itself, to bound on its own: a
// context of the parent's made for each call, never cancelled, would live
// until its deadline.
func TestDeadlinesWithoutSharingHandOutTheParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := deadlines{parent: parent, within: storeTimeout}
	if got := c.get(); got != parent {
		t.Errorf("got %v, want the parent", got)
	}
	if got := c.longest(); got != storeTimeout {
		t.Errorf("longest %v, want %v", got, storeTimeout)
	}
}
