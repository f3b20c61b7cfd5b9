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
	goredis "github.com/redis/go-redis/v9"

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
	s, c := openPrivate(t)
	now := time.Now()
	leases := leaseNew(t, s, now, "a", "b")
	a, b := leases[0], leases[1]
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
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 2}})
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
	leaseNew(t, s, time.Now(), "a")
	if enc, err := c.ObjectEncoding(ctx, prefix+"leases").Result(); err != nil || enc != "hashtable" {
		t.Errorf("encoding of %sleases: got %q, %v; want hashtable", prefix, enc, err)
	}
}

// A repository's manifests are a hash table too (a repository takes
// hundreds of pushes); the hash goes with its last manifest.
func TestManifestsAreAHashTable(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	c, prefix := raw(t, o)
	key := prefix + "manifests:team/app"
	ingest := func(fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.Ingest(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	ingest(func(tx store.Tx) error {
		return tx.PutManifest(ctx, "team/app", "sha256:a", "application/vnd.oci.image.manifest.v1+json", "v1")
	})
	if enc, err := c.ObjectEncoding(ctx, key).Result(); err != nil || enc != "hashtable" {
		t.Errorf("encoding of %s: got %q, %v; want hashtable", key, enc, err)
	}
	ingest(func(tx store.Tx) error {
		mt, tags, ok, err := tx.Manifest(ctx, "team/app", "sha256:a")
		if err != nil || !ok || mt != "application/vnd.oci.image.manifest.v1+json" || len(tags) != 1 || tags[0] != "v1" {
			t.Errorf("manifest: got %q, tags %v, %v, %v; want its media type and tag v1", mt, tags, ok, err)
		}
		return tx.DeleteManifest(ctx, "team/app", "sha256:a")
	})
	if n, err := c.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("%s after its last manifest was deleted: exists %d, %v; want gone", key, n, err)
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
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("j%02d", i)
	}
	leases := leaseNew(t, s, now, ids...)
	lost := map[string]bool{}
	for _, i := range []int{0, 1, 30, 58, 59} {
		l := leases[i]
		if err := s.Release(ctx, l); err != nil {
			t.Fatal(err)
		}
		lost[l.ID] = true
	}
	var wg sync.WaitGroup
	for _, l := range leases {
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
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": jobs}})
	if err != nil || len(res.Leases) != len(lost) {
		t.Errorf("lease after the acks: got %d jobs, %v; want the %d released", len(res.Leases), err, len(lost))
	}
}

// An ack that Redis refuses for want of memory is store.ErrUnavailable and
// changes nothing: its transaction is discarded whole, the entry with it.
func TestAckRefusedForMemoryChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, c := openPrivate(t)
	now := time.Now()
	l := leaseNew(t, s, now, "a")[0]
	e := history.Entry{ID: "a", WebhookID: "w", Attempt: 1, Timestamp: now.UTC().Truncate(time.Millisecond)}
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, l, e); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ack with Redis out of memory: got %v, want ErrUnavailable", err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.History(ctx, "w", 10); err != nil || len(got) != 0 {
		t.Errorf("history after the refused ack: got %v, %v; want none", got, err)
	}
	if err := s.Ack(ctx, l, e); err != nil {
		t.Errorf("ack once Redis has memory: %v", err)
	}
	if got, err := s.History(ctx, "w", 10); err != nil || len(got) != 1 {
		t.Errorf("history after the ack: got %d entries, %v; want 1", len(got), err)
	}
}

// leaseNew queues jobs of the given ids for webhook w, due now, and leases
// them all, in id order.
func leaseNew(t *testing.T, s *redis.Store, now time.Time, ids ...string) []store.Lease {
	t.Helper()
	ctx := context.Background()
	err := s.Ingest(ctx, func(tx store.Tx) error {
		for _, id := range ids {
			if err := tx.Enqueue(ctx, store.Job{ID: id, WebhookID: "w", Created: now, Due: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": len(ids)}})
	if err != nil || len(res.Leases) != len(ids) {
		t.Fatalf("lease: got %d leases, %v; want %d", len(res.Leases), err, len(ids))
	}
	return res.Leases
}

// openPrivate opens a store on a Redis of its own, for a test that changes
// the server (its functions, its memory limit), and a client on it.
func openPrivate(t *testing.T) (*redis.Store, *goredis.Client) {
	t.Helper()
	o := redis.Options{Addr: redistest.Start(t).Addr, Prefix: "rw"}
	c, _ := raw(t, o)
	return open(t, o), c
}
