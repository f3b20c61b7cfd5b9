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
