package batch

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Every item runs exactly once, in a batch of at most max, and each caller
// gets its own item's error.
func TestEveryCallRunsOnceWithItsOwnError(t *testing.T) {
	const callers, limit = 200, 7
	var (
		mu      sync.Mutex
		ran     = map[int]int{}
		largest int
		running int
	)
	r := New(limit, func(items []int) []error {
		mu.Lock()
		running++
		if running > 1 {
			t.Errorf("%d batches ran at once", running)
		}
		largest = max(largest, len(items))
		for _, it := range items {
			ran[it]++
		}
		mu.Unlock()
		errs := make([]error, len(items))
		for i, it := range items {
			if it%3 == 0 {
				errs[i] = fmt.Errorf("item %d", it)
			}
		}
		mu.Lock()
		running--
		mu.Unlock()
		return errs
	})
	got := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Do(i); err != nil {
				got[i] = err.Error()
			}
		}()
	}
	wg.Wait()
	want := make([]string, callers)
	wantRan := map[int]int{}
	for i := range callers {
		wantRan[i] = 1
		if i%3 == 0 {
			want[i] = fmt.Sprintf("item %d", i)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRan, ran); diff != "" {
		t.Errorf("runs per item (-want +got):\n%s", diff)
	}
	if largest > limit {
		t.Errorf("a batch of %d items, more than %d", largest, limit)
	}
}

// Calls that arrive while a batch runs run together in the next one.
func TestCallsArrivingDuringABatchShareTheNext(t *testing.T) {
	first := make(chan struct{})
	release := make(chan struct{})
	var sizes []int
	r := New(100, func(items []string) []error {
		sizes = append(sizes, len(items))
		if items[0] == "first" {
			close(first)
			<-release
		}
		return nil
	})
	done := make(chan error, 6)
	go func() { done <- r.Do("first") }()
	<-first
	for i := range 5 {
		go func() { done <- r.Do(fmt.Sprint("later", i)) }()
	}
	// The five wait behind the first batch; let it end once they queued.
	waitPending(t, r, 5)
	close(release)
	for range 6 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]int{1, 5}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

// waitPending waits until n calls wait for the running batch.
func waitPending(t *testing.T, r *Runner[string], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k := r.Pending()
		switch {
		case k == n:
			return
		case k > n:
			t.Fatalf("%d calls wait, more than the %d made", k, n)
		case time.Now().After(deadline):
			t.Fatalf("%d calls wait after 10s, want %d", k, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A lingering Runner gathers the calls made while its first call waits into
// one batch, and runs a full batch without waiting out the linger.
func TestLingerGathersCallsAndRunsAFullBatchAtOnce(t *testing.T) {
	const limit = 10
	var (
		mu      sync.Mutex
		batches []int
	)
	r := NewLinger(limit, time.Hour, func(items []int) []error {
		mu.Lock()
		batches = append(batches, len(items))
		mu.Unlock()
		return make([]error, len(items))
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range limit {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.Do(i); err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d calls, as many as the limit, did not run before the hour's linger ran out", limit)
	}
	if diff := cmp.Diff([]int{limit}, batches); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}

	// A call alone runs once the linger is out.
	short := NewLinger(limit, 10*time.Millisecond, func(items []int) []error { return make([]error, len(items)) })
	if err := short.Do(1); err != nil {
		t.Fatal(err)
	}
}

// With NewWaiting, calls that can wait linger for one that cannot and run
// in its batch, however long the linger; a batch that holds a call that
// cannot wait runs at once.
func TestWaitingCallsRunWithTheFirstThatCannotWait(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]int
	)
	// Even items can wait; odd ones cannot.
	r := NewWaiting(10, time.Hour, func(i int) bool { return i%2 == 0 }, func(items []int) []error {
		mu.Lock()
		batches = append(batches, append([]int(nil), items...))
		mu.Unlock()
		return make([]error, len(items))
	})
	runs := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(batches)
	}
	done := make(chan error, 2)
	go func() { done <- r.Do(2) }() // lingers: it leads a batch of calls that can wait
	deadline := time.Now().Add(10 * time.Second)
	for !r.lingeringNow() {
		if time.Now().After(deadline) {
			t.Fatal("the call that can wait is not lingering after 10s")
		}
		time.Sleep(time.Millisecond)
	}
	go func() { done <- r.Do(3) }() // cannot wait: ends the linger, runs with 2
	for range 2 {
		waitDo(t, done, "a call that cannot wait did not end the hour's linger")
	}
	if diff := cmp.Diff([][]int{{2, 3}}, batches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}

	// Alone, a call that cannot wait runs at once.
	finished := make(chan error, 1)
	go func() { finished <- r.Do(5) }()
	waitDo(t, finished, "a call that cannot wait lingered")
	if got := runs(); got != 2 {
		t.Errorf("%d batches, want 2", got)
	}
}

// waitDo waits for a Do's error on done and fails on it, or with late
// after 30s.
func waitDo(t *testing.T, done <-chan error, late string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal(late)
	}
}

// lingeringNow reports whether a batch waits for more calls.
func (r *Runner[T]) lingeringNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lingering
}

// Flush ends a linger however long: the batch that waits runs with the
// calls it has, and when none waits, the next batch does not wait.
func TestFlushEndsTheLinger(t *testing.T) {
	var (
		mu      sync.Mutex
		batches []int
	)
	r := NewLinger(100, time.Hour, func(items []int) []error {
		mu.Lock()
		batches = append(batches, len(items))
		mu.Unlock()
		return make([]error, len(items))
	})
	done := make(chan error, 3)
	for i := range 3 {
		go func() { done <- r.Do(i) }()
	}
	// Flush once all three wait in the lingering batch.
	for r.Pending() < 3 {
		time.Sleep(time.Millisecond)
	}
	r.Flush()
	for range 3 {
		waitDo(t, done, "calls lingered on after Flush")
	}

	r.Flush() // none lingers: the next batch does not wait
	go func() { done <- r.Do(4) }()
	waitDo(t, done, "the batch after a Flush lingered")
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{3, 1}, batches); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}
