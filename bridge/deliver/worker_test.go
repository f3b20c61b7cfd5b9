package deliver

import (
	"testing"
	"time"
)

// A store call's context ends storeTimeout after it was handed out, or up
// to renewEvery sooner; calls within renewEvery share one, and a new one
// leaves the contexts handed out before it running until their deadline.
func TestStoreContextsEndWithinTheStoreTimeout(t *testing.T) {
	now := time.Now()
	c := storeContexts{now: func() time.Time { return now }}
	check := func(label string, at time.Time) {
		t.Helper()
		now = at
		dl, ok := c.get().Deadline()
		if !ok {
			t.Fatalf("%s: no deadline", label)
		}
		if left := dl.Sub(at); left > storeTimeout || left <= storeTimeout-renewEvery {
			t.Errorf("%s: ends %v after it was asked for, want (%v, %v]", label, left, storeTimeout-renewEvery, storeTimeout)
		}
	}
	start := now
	check("first", start)
	first := c.get()
	check("just before the renewal", start.Add(renewEvery-time.Millisecond))
	if c.get() != first {
		t.Errorf("a call within %v of the first got a context of its own", renewEvery)
	}
	check("at the renewal", start.Add(renewEvery))
	if c.get() == first {
		t.Errorf("a call %v after the first got the first's context", renewEvery)
	}
	if err := first.Err(); err != nil {
		t.Errorf("the first context ended when the next was made: %v", err)
	}
	check("much later", start.Add(10*storeTimeout))
}
