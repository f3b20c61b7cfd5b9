package sqlite

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// Writes that wait while another commits are committed together, and each
// keeps its own outcome: one whose fn fails leaves nothing behind, and
// returns its own error; the others commit.
func TestGroupCommitKeepsEachWriteApart(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Now()
	job := func(id string) store.Job {
		return store.Job{ID: id, WebhookID: "w", EventID: "e-" + id, Action: "push", Payload: []byte(id), Created: now, Due: now}
	}
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
	holding, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.Ingest(ctx, func(tx store.Tx) error {
			close(holding)
			<-release
			return enqueue("first", nil)(tx)
		})
	}()
	<-holding
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
	deadline := time.Now().Add(10 * time.Second)
	for s.writes.Pending() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait behind the first after 10s, want 3", s.writes.Pending())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}

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
