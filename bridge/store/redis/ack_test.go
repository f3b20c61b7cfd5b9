package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

// An ack pushes its history entry before its script runs, in one
// transaction. When Redis has lost its scripts (a restart, SCRIPT FLUSH),
// the entry is in but the ack is not: the script, loaded then, must still
// take back the entry of a lost lease, found by its value as other entries
// may have come since, and keep that of a lease held.
func TestAcksAfterRedisLostItsScripts(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	o := redis.Options{Addr: srv.Addr, Prefix: "rw"}
	s := open(t, o)
	c, _ := raw(t, o)
	now := time.Now()
	err := s.Ingest(ctx, func(tx store.Tx) error {
		for _, id := range []string{"a", "b"} {
			if err := tx.Enqueue(ctx, store.Job{ID: id, WebhookID: "w", Created: now, Due: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 2}})
	if err != nil || len(res.Leases) != 2 {
		t.Fatalf("lease: got %d leases, %v; want 2", len(res.Leases), err)
	}
	a, b := res.Leases[0], res.Leases[1]
	if err := s.Release(ctx, a); err != nil {
		t.Fatalf("release: %v", err)
	}
	entry := func(l store.Lease) history.Entry {
		return history.Entry{ID: l.ID, WebhookID: "w", EventID: "e", Action: "push", Attempt: l.Attempts,
			Timestamp: now.UTC().Truncate(time.Millisecond), Response: &history.Response{StatusCode: 200}}
	}
	// A ping's entry, pushed after the lost ack's and before its script.
	ping := history.Entry{ID: "ping", Action: "ping", Timestamp: now.UTC().Truncate(time.Millisecond), WebhookID: "w"}

	if err := c.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, a, entry(a)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("ack of a released lease: got %v, want ErrLeaseLost", err)
	}
	if err := s.Record(ctx, ping); err != nil {
		t.Fatal(err)
	}
	if err := c.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, b, entry(b)); err != nil {
		t.Errorf("ack of a held lease: %v", err)
	}
	got, err := s.History(ctx, "w", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]history.Entry{entry(b), ping}, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	// b is done, a is queued again.
	res, err = s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 2}})
	if err != nil || len(res.Leases) != 1 || res.Leases[0].ID != "a" {
		t.Errorf("lease after the acks: got %v, %v; want job a alone", res.Leases, err)
	}
}

// The hash of lease tokens is a hash table from its first lease on, even
// with a few fields: kept as a listpack (up to 512 fields by default), every
// lease, ack and failure scanned its fields one by one.
func TestLeasesAreAHashTable(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	c, prefix := raw(t, o)
	now := time.Now()
	err := s.Ingest(ctx, func(tx store.Tx) error {
		return tx.Enqueue(ctx, store.Job{ID: "a", WebhookID: "w", Created: now, Due: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease: got %d leases, %v; want 1", len(res.Leases), err)
	}
	if enc, err := c.ObjectEncoding(ctx, prefix+"leases").Result(); err != nil || enc != "hashtable" {
		t.Errorf("encoding of %sleases: got %q, %v; want hashtable", prefix, enc, err)
	}
}

// Acks that come at once for one webhook, more than its history keeps,
// push only the newest it keeps; the entries of leases lost are taken back
// wherever they fell, and never left in the history.
func TestManyAcksAtOnceKeepTheHistoryBounded(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	c, prefix := raw(t, o)
	now := time.Now()
	const jobs = 60
	err := s.Ingest(ctx, func(tx store.Tx) error {
		for i := range jobs {
			if err := tx.Enqueue(ctx, store.Job{ID: fmt.Sprintf("j%02d", i), WebhookID: "w", Created: now, Due: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": jobs}})
	if err != nil || len(res.Leases) != jobs {
		t.Fatalf("lease: got %d leases, %v; want %d", len(res.Leases), err, jobs)
	}
	lost := map[string]bool{}
	for _, i := range []int{0, 1, 30, 58, 59} {
		l := res.Leases[i]
		if err := s.Release(ctx, l); err != nil {
			t.Fatal(err)
		}
		lost[l.ID] = true
	}
	var wg sync.WaitGroup
	for _, l := range res.Leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Ack(ctx, l, history.Entry{ID: l.ID, WebhookID: "w", Attempt: 1, Timestamp: now})
			if lost[l.ID] != errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("ack of %s (lease lost %v): %v", l.ID, lost[l.ID], err)
			}
		}()
	}
	wg.Wait()
	raw, err := c.LRange(ctx, prefix+"history:w", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if keep := storetest.Limits().History + 16; len(raw) > keep {
		t.Errorf("history holds %d entries, want at most %d", len(raw), keep)
	}
	for _, e := range raw {
		for id := range lost {
			if strings.Contains(e, `"`+id+`"`) {
				t.Errorf("history holds the entry of %s, whose lease was lost: %s", id, e)
			}
		}
	}
	got, err := s.History(ctx, "w", storetest.Limits().History)
	if err != nil || len(got) != storetest.Limits().History {
		t.Errorf("history: got %d entries, %v; want %d", len(got), err, storetest.Limits().History)
	}
	res, err = s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": jobs}})
	if err != nil || len(res.Leases) != len(lost) {
		t.Errorf("lease after the acks: got %d jobs, %v; want the %d released", len(res.Leases), err, len(lost))
	}
}
