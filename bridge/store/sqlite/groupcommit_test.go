package sqlite

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/batch"
)

// Writes that wait while another commits are committed together, and each
// keeps its own outcome: one whose fn fails leaves nothing behind, and
// returns its own error; the others commit.
func TestGroupCommitKeepsEachWriteApart(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Now()
	job := func(id string) store.Job { return testJob(id, now) }
	enqueue := func(id string, fail error) func(store.Tx) error {
		return func(tx store.Tx) error {
			if err := tx.Enqueue(ctx, job(id)); err != nil {
				return err
			}
			if err := tx.MarkSeen(ctx, "e-"+id, now.Add(time.Hour)); err != nil {
				return err
			}
			return fail
		}
	}

	// The first write holds its batch until the others wait behind it.
	release, first := hold(s, enqueue("first", nil))
	errRefused := errors.New("refused by fn")
	results := make(chan error, 3)
	for _, w := range []struct {
		id   string
		fail error
	}{{"a", nil}, {"b", errRefused}, {"c", nil}} {
		go func() {
			err := s.Ingest(ctx, enqueue(w.id, w.fail))
			if w.fail != nil && errors.Is(err, w.fail) {
				err = nil // its own error, as it should be
			} else if w.fail != nil {
				err = errors.New("the failing write got " + errString(err) + ", not its own error")
			}
			results <- err
		}()
	}
	waitPending(t, s, 3)
	releaseHeld(t, release, first, results, 3)

	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 10}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range res.Leases {
		got = append(got, l.ID)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"a", "c", "first"}, got); diff != "" {
		t.Errorf("jobs committed (-want +got):\n%s", diff)
	}
	var seen []string
	err = s.Ingest(ctx, func(tx store.Tx) error {
		seen = nil
		for _, id := range []string{"e-a", "e-b", "e-c", "e-first"} {
			ok, err := tx.Seen(ctx, id)
			if err != nil {
				return err
			}
			if ok {
				seen = append(seen, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"e-a", "e-c", "e-first"}, seen); diff != "" {
		t.Errorf("event ids marked (-want +got):\n%s", diff)
	}
}

// hold starts an Ingest that runs fn once release is closed, and returns
// once that Ingest holds the writer: writes made until then wait and run in
// one batch after it. first gets its error.
func hold(s *Store, fn func(store.Tx) error) (release chan struct{}, first chan error) {
	holding := make(chan struct{})
	release, first = make(chan struct{}), make(chan error, 1)
	go func() {
		first <- s.Ingest(context.Background(), func(tx store.Tx) error {
			close(holding)
			<-release
			return fn(tx)
		})
	}()
	<-holding
	return release, first
}

// releaseHeld lets the write hold holds commit, and reports its error and
// those of the n writes that waited behind it (on results); it returns
// whether any failed.
func releaseHeld(t *testing.T, release chan struct{}, first <-chan error, results <-chan error, n int) (failed bool) {
	t.Helper()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-results; err != nil {
			t.Error(err)
			failed = true
		}
	}
	return failed
}

// waitPending waits until n writes wait behind the one committing.
func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.writes.Pending() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait behind the first after 10s, want %d", s.writes.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// testJob is a job of webhook w, due at now, its payload its id.
func testJob(id string, now time.Time) store.Job {
	return store.Job{ID: id, WebhookID: "w", EventID: "e-" + id, Action: "push", Payload: id, Created: now, Due: now}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// openTemp opens a store in a directory of the test's own, closed when the
// test ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: t.TempDir(), Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A job enqueued leased is held by this process only while the write that
// added it stands: when that write is undone (its own fn fails, or another
// write of its batch does and the batch runs again), the lease is let go
// of, so no hold is left on a row that was never committed, and the
// handed leases of the writes that committed ack their jobs.
func TestHandoffLetsGoWhenItsWriteIsUndone(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Now()
	job := func(id string) store.Job { return testJob(id, now) }
	errRefused := errors.New("refused by fn")
	handoff := func(id string, fail error, handed *[]store.Lease) func(store.Tx) error {
		return func(tx store.Tx) error {
			htx := tx.(store.HandoffTx)
			if err := htx.EnqueueLeased(ctx, job(id), now.Add(time.Minute)); err != nil {
				return err
			}
			if handed != nil {
				*handed = htx.Handed()
			}
			return fail
		}
	}

	// The first write holds its batch until the two others wait behind it:
	// they then run in one batch, where b fails and a runs twice.
	release, first := hold(s, func(store.Tx) error { return nil })
	// a hands a job of another id each run, as a receiver would when its
	// workers are taken by the time the batch runs again.
	var handedA []store.Lease
	runs := 0
	results := make(chan error, 2)
	go func() {
		results <- s.Ingest(ctx, func(tx store.Tx) error {
			runs++
			return handoff("a"+strconv.Itoa(runs), nil, &handedA)(tx)
		})
	}()
	waitPending(t, s, 1) // a runs first: b's failure undoes its first run
	go func() {
		if err := s.Ingest(ctx, handoff("b", errRefused, nil)); !errors.Is(err, errRefused) {
			results <- errors.New("the failing write got " + errString(err) + ", not its own error")
			return
		}
		results <- nil
	}()
	waitPending(t, s, 2)
	if releaseHeld(t, release, first, results, 2) {
		return
	}

	var held []string
	s.leases.mu.Lock()
	for id := range s.leases.byID {
		held = append(held, id)
	}
	s.leases.mu.Unlock()
	if runs != 2 {
		t.Fatalf("a ran %d times, want 2 (once in the batch b undid)", runs)
	}
	if diff := cmp.Diff([]string{"a2"}, held); diff != "" {
		t.Errorf("jobs held after the batch (-want +got):\n%s", diff)
	}
	d, err := s.Depth(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if d != (store.Depth{Leased: 1}) {
		t.Errorf("depth %+v, want only a2, leased", d)
	}
	if len(handedA) != 1 {
		t.Fatalf("a handed %d leases, want 1", len(handedA))
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Leases) != 0 {
		t.Errorf("Lease took %d jobs, want none: a2 is handed, a1 and b were undone", len(res.Leases))
	}
	if err := s.Ack(ctx, handedA[0], history.Entry{ID: "a2", Attempt: 1}); err != nil {
		t.Fatalf("ack a2 with its handed lease: %v", err)
	}
	if d, err := s.Depth(ctx, now); err != nil || d != (store.Depth{}) {
		t.Errorf("depth after the ack %+v (%v), want empty", d, err)
	}
}

// The ack of a job handed off, made while envelopes come, waits for the
// next envelope's write and commits with it (here the wait could last an
// hour); one made when no envelope came lately commits at once, and so
// does the ack of a job leased from the queue, whatever comes: its
// webhook may have a backlog that its worker is wanted for.
func TestAcksCommitWithTheNextEnvelopeWhileEnvelopesCome(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	s.wait = time.Hour
	s.writes = batch.NewWaiting(maxBatch, s.wait, s.canWait, s.runBatch)
	now := time.Now()
	job := func(id string) store.Job { return testJob(id, now) }
	var handed []store.Lease
	for _, id := range []string{"a", "b"} {
		err := s.Ingest(ctx, func(tx store.Tx) error {
			if err := tx.(store.HandoffTx).EnqueueLeased(ctx, job(id), now.Add(time.Minute)); err != nil {
				return err
			}
			handed = append(handed, tx.(store.HandoffTx).Handed()...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	acked := make(chan error, 1)
	go func() { acked <- s.Ack(ctx, handed[0], history.Entry{ID: "a", Attempt: 1}) }()
	select {
	case err := <-acked:
		t.Fatalf("the ack committed (%v) with no envelope after it, want it to wait for the next", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Ingest(ctx, func(tx store.Tx) error { return tx.Enqueue(ctx, job("c")) }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("ack a: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ack did not commit with the envelope that came after it")
	}

	s.durableAt.Store(time.Now().Add(-2 * s.wait).UnixNano()) // no envelope for longer than the wait
	go func() { acked <- s.Ack(ctx, handed[1], history.Entry{ID: "b", Attempt: 1}) }()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("ack b: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an ack with no envelope lately waited")
	}
	if d, err := s.Depth(ctx, now); err != nil || d != (store.Depth{Ready: 1}) {
		t.Errorf("depth %+v (%v), want c ready and a and b acked", d, err)
	}

	// c, leased from the queue, right after an envelope's write.
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease c: %v, %d leases", err, len(res.Leases))
	}
	if err := s.Ingest(ctx, func(tx store.Tx) error { return tx.Enqueue(ctx, job("d")) }); err != nil {
		t.Fatal(err)
	}
	go func() { acked <- s.Ack(ctx, res.Leases[0], history.Entry{ID: "c", Attempt: 1}) }()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatalf("ack c: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ack of a job leased from the queue waited for an envelope")
	}
}
