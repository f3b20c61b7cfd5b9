package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// A database of schema version 1 (jobs keyed by delivery id, each with its
// payload) opens with its jobs queued as they were: a queued one leases
// with its payload, a leased one is queued again, and both ack.
func TestMigrateFromVersion1KeepsTheQueue(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Millisecond)

	dsn := (&url.URL{Scheme: "file", Path: filepath.Join(dir, DBFile)}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, migrations[0]+`PRAGMA user_version = 1;`); err != nil {
		t.Fatalf("make a version 1 database: %v", err)
	}
	insert := `INSERT INTO jobs (id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, state, token, lease_until, payload)
		VALUES (?, 'w', ?, 'push', 'application/json', ?, 0, ?, ?, ?, ?, ?, ?)`
	for _, j := range []struct {
		id, state, token string
		attempts         int
		leaseUntil       int64
	}{
		{"queued", "queued", "", 0, 0},
		{"leased", "leased", "old-token", 1, now.Add(time.Minute).UnixNano()},
	} {
		if _, err := db.ExecContext(ctx, insert, j.id, "e-"+j.id, now.UnixNano(), j.attempts, now.UnixNano(),
			j.state, j.token, j.leaseUntil, []byte("payload of "+j.id)); err != nil {
			t.Fatalf("insert job %s: %v", j.id, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, Options{Dir: dir, Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		t.Fatalf("open a version 1 database: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 5}})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	type leasedJob struct {
		ID       string
		Attempts int
		Payload  string
	}
	var got []leasedJob
	for _, l := range res.Leases {
		got = append(got, leasedJob{l.ID, l.Attempts, l.Payload})
	}
	want := []leasedJob{{"leased", 2, "payload of leased"}, {"queued", 1, "payload of queued"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("leased after migration (-want +got):\n%s", diff)
	}
	for _, l := range res.Leases {
		if err := s.Ack(ctx, l, historyEntry(l)); err != nil {
			t.Errorf("ack %s: %v", l.ID, err)
		}
	}
	var bodies int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM bodies`).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if bodies != 0 {
		t.Errorf("%d payloads left after every job was acked, want 0", bodies)
	}
}

func historyEntry(l store.Lease) history.Entry {
	return history.Entry{ID: l.ID, WebhookID: l.WebhookID, EventID: l.EventID, Action: l.Action, Attempt: l.Attempts}
}

// The jobs of one Ingest that carry the same payload share one stored copy,
// which goes with the last of them; an Enqueue that adds no job (its id is
// queued) leaves no copy behind.
func TestPayloadsAreStoredOnceAndRemovedWithTheirLastJob(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	job := func(id, webhook, payload string) store.Job {
		return store.Job{ID: id, WebhookID: webhook, EventID: "e", Action: "push", Payload: payload, Created: now, Due: now}
	}
	enqueue := func(jobs ...store.Job) {
		t.Helper()
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for _, j := range jobs {
				if err := tx.Enqueue(ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
	}
	bodies := func() []string {
		t.Helper()
		rows, err := s.db.QueryContext(ctx, `SELECT payload || ' x' || refs FROM bodies ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	check := func(step string, want ...string) {
		t.Helper()
		if diff := cmp.Diff(want, bodies()); diff != "" {
			t.Errorf("%s: payloads stored (-want +got):\n%s", step, diff)
		}
	}

	enqueue(job("a1", "w1", "acr"), job("a2", "w2", "acr"), job("a3", "w3", "cloudevents"))
	check("enqueued", "acr x2", "cloudevents x1")
	enqueue(job("a1", "w1", "again"), job("a2", "w2", "again"))
	check("enqueued again", "acr x2", "cloudevents x1")

	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w1": 1, "w2": 1, "w3": 1}})
	if err != nil || len(res.Leases) != 3 {
		t.Fatalf("lease: got %d jobs, error %v; want 3", len(res.Leases), err)
	}
	for _, l := range res.Leases {
		if want := map[string]string{"a1": "acr", "a2": "acr", "a3": "cloudevents"}[l.ID]; l.Payload != want {
			t.Errorf("job %s leased with payload %q, want %q", l.ID, l.Payload, want)
		}
	}
	if err := s.Ack(ctx, res.Leases[0], historyEntry(res.Leases[0])); err != nil {
		t.Fatal(err)
	}
	check("a1 acked", "acr x1", "cloudevents x1")
	fail := store.Failure{Now: now, MaxAttempts: 1, Error: "status 500", Entry: historyEntry(res.Leases[1])}
	if dead, err := s.Fail(ctx, res.Leases[1], fail); err != nil || !dead {
		t.Fatalf("fail: got dead %v, error %v", dead, err)
	}
	check("a2 dead", "cloudevents x1")
	if err := s.Release(ctx, res.Leases[2]); err != nil {
		t.Fatal(err)
	}
	check("a3 released", "cloudevents x1")
	dl, err := s.DeadLetters(ctx, "w2")
	if err != nil || len(dl) != 1 || dl[0].Payload != "acr" {
		t.Errorf("dead letters of w2: got %+v, error %v; want a2 with its payload", dl, err)
	}
}

// Acks commit without waiting for the disk when nothing else commits with
// them (a power loss undoing them delivers their jobs again), and every
// other write still commits with the store's own synchronous mode: a write
// after lazy acks finds the connection at FULL again.
func TestOnlyLazyBatchesCommitWithoutSync(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mode := func(write func(context.Context, func(*txn) error) error) int {
		t.Helper()
		var m int
		if err := write(ctx, func(tx *txn) error {
			return tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&m)
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	const normal, full = 1, 2
	if m := mode(s.write); m != full {
		t.Errorf("a write commits with synchronous %d, want %d (FULL)", m, full)
	}
	lazy := func(ctx context.Context, fn func(*txn) error) error { return s.writeLazy(ctx, false, fn) }
	if m := mode(lazy); m != normal {
		t.Errorf("a lazy write alone commits with synchronous %d, want %d (NORMAL)", m, normal)
	}
	if m := mode(s.write); m != full {
		t.Errorf("a write after a lazy one commits with synchronous %d, want %d (FULL)", m, full)
	}
	// A real ack is lazy, and what follows it is not.
	now := time.Now()
	err := s.Ingest(ctx, func(tx store.Tx) error {
		return tx.Enqueue(ctx, store.Job{ID: "a", WebhookID: "w", EventID: "e", Action: "push", Payload: "p", Created: now, Due: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease: %d jobs, %v", len(res.Leases), err)
	}
	if err := s.Ack(ctx, res.Leases[0], historyEntry(res.Leases[0])); err != nil {
		t.Fatal(err)
	}
	if !s.syncLazy {
		t.Errorf("after an ack alone the writer is not at NORMAL: the ack waited for the disk")
	}
	if m := mode(s.write); m != full {
		t.Errorf("a write after an ack commits with synchronous %d, want %d (FULL)", m, full)
	}
}
