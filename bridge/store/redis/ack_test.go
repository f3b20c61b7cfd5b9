package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
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
