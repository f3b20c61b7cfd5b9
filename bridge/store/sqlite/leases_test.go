package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite/sqlitetest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

// Leasing writes nothing to the database (leases are the process's own):
// SQLite's data_version, seen from another connection, and the WAL's size
// stay the same while jobs are leased and released; the ack then writes.
// A store opened again after its process let go of it finds the job
// queued, with the attempt that was in flight not counted.
func TestLeasesAreHeldInMemory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, Limits: storetest.Limits()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	err = s.Ingest(ctx, func(tx store.Tx) error {
		for _, id := range []string{"a", "b"} {
			if err := tx.Enqueue(ctx, store.Job{ID: id, WebhookID: "w", EventID: "e-" + id, Action: "push",
				Payload: `{"n":"` + id + `"}`, Created: now, Due: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}

	state := sqlitetest.WriteProbe(t, dir)

	v0, w0 := state()
	lease := func() []store.Lease {
		t.Helper()
		res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 5}})
		if err != nil {
			t.Fatalf("lease: %v", err)
		}
		return res.Leases
	}
	leased := lease()
	if len(leased) != 2 {
		t.Fatalf("leased %d jobs, want 2", len(leased))
	}
	if again := lease(); len(again) != 0 {
		t.Errorf("leased %d jobs while both were held, want 0", len(again))
	}
	if err := s.Release(ctx, leased[1]); err != nil {
		t.Fatalf("release: %v", err)
	}
	d, err := s.Depth(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Ready != 1 || d.Leased != 1 {
		t.Errorf("depth with one job leased and one released: %+v, want 1 ready and 1 leased", d)
	}
	if v, w := state(); v != v0 || w != w0 {
		t.Errorf("after leases and a release: data_version %d → %d, WAL %d → %d bytes; want no change", v0, v, w0, w)
	}
	if err := s.Ack(ctx, leased[0], history.Entry{ID: leased[0].ID, EventID: leased[0].EventID, Action: "push", Attempt: 1}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if v, _ := state(); v == v0 {
		t.Errorf("after an ack: data_version %d unchanged, want a write", v)
	}

	// b is leased when the process lets go of the store.
	held := lease()
	if len(held) != 1 || held[0].ID != "b" || held[0].Attempts != 1 {
		t.Fatalf("leased %+v, want b at its first attempt", held)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 5}})
	if err != nil {
		t.Fatalf("lease after reopening: %v", err)
	}
	if len(res.Leases) != 1 || res.Leases[0].ID != "b" || res.Leases[0].Attempts != 1 {
		t.Errorf("after reopening leased %+v, want b at its first attempt again", res.Leases)
	}
}
