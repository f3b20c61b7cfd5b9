package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// jobCols are the columns of a store.Job in dead_letters, in scanJob's order.
const jobCols = `id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, payload`

// queueCols are the same columns of a job in the queue, whose payload is in
// bodies.
const queueCols = `id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due,
	(SELECT payload FROM bodies WHERE bodies.seq = queue.body)`

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// scanJob reads jobCols (or queueCols), then extra.
func scanJob(r scanner, extra ...any) (store.Job, error) {
	var j store.Job
	var created, due int64
	dest := append([]any{&j.ID, &j.WebhookID, &j.EventID, &j.Action, &j.ContentType, &created, &j.Redelivery, &j.Attempts, &due, &j.Payload}, extra...)
	if err := r.Scan(dest...); err != nil {
		return store.Job{}, err
	}
	j.Created, j.Due = fromNanos(created), fromNanos(due)
	return j, nil
}

// Ingest runs fn once in a transaction (BEGIN IMMEDIATE: it holds the write
// lock from the start, so it never fails to upgrade), perhaps with other
// writes (see runBatch), and commits what fn did if fn returns nil; it
// returns once that is durable. fn's error is returned as it is. fn must not
// call other methods of s while it runs: the store's one connection is its.
func (s *Store) Ingest(ctx context.Context, fn func(store.Tx) error) error {
	o := &op{ctx: ctx, fn: func(tx *txn) error {
		it := &ingestTx{s: s, tx: tx}
		if err := fn(it); err != nil {
			return err
		}
		return it.finish(ctx)
	}}
	if err := s.commit(o); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return o.err
}

// ingestTx is the store.Tx of one Ingest.
type ingestTx struct {
	s  *Store
	tx *txn
	// bodies are the payloads this transaction stored: the jobs of an event
	// for the webhooks of one format get the same bytes, stored once.
	bodies []body
	// orphans: some Enqueue added no job, so a body may have no job.
	orphans bool
}

// body is a payload stored in bodies, and its row.
type body struct {
	payload []byte
	seq     int64
}

var _ store.Tx = (*ingestTx)(nil)

// Seen reports whether eventID is recorded; it stays so until Maintain
// forgets it.
func (t *ingestTx) Seen(ctx context.Context, eventID string) (bool, error) {
	var one int
	err := t.tx.QueryRowContext(ctx, `SELECT 1 FROM seen WHERE event_id = ?`, eventID).Scan(&one)
	switch {
	case err == sql.ErrNoRows:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("check event %q seen: %w", eventID, t.s.classify(err))
	}
	return true, nil
}

// MarkSeen records eventID until until, moving a previous until.
func (t *ingestTx) MarkSeen(ctx context.Context, eventID string, until time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO seen (event_id, until) VALUES (?, ?)
		ON CONFLICT (event_id) DO UPDATE SET until = excluded.until`, eventID, nanos(until))
	if err != nil {
		return fmt.Errorf("mark event %q seen: %w", eventID, t.s.classify(err))
	}
	return nil
}

// Enqueue queues job unless a job with its ID is queued or leased. Its
// payload is stored once per transaction: jobs with the same bytes share it.
func (t *ingestTx) Enqueue(ctx context.Context, j store.Job) error {
	seq, err := t.body(ctx, j.Payload)
	if err != nil {
		return fmt.Errorf("enqueue job %q: store payload: %w", j.ID, t.s.classify(err))
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO queue (id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		j.ID, j.WebhookID, j.EventID, j.Action, j.ContentType, nanos(j.Created), j.Redelivery, j.Attempts, nanos(j.Due), seq)
	if err != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, t.s.classify(err))
	}
	if n, err := affected(res); err != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, t.s.classify(err))
	} else if n == 0 {
		t.orphans = true
	}
	return nil
}

// body returns the row of payload in bodies, storing it unless this
// transaction already did. A new body has no refs until a job points at it.
func (t *ingestTx) body(ctx context.Context, payload []byte) (int64, error) {
	for _, b := range t.bodies {
		if bytes.Equal(b.payload, payload) {
			return b.seq, nil
		}
	}
	var seq int64
	if err := t.tx.QueryRowContext(ctx, `INSERT INTO bodies (refs, payload) VALUES (0, ?) RETURNING seq`, payloadArg(payload)).Scan(&seq); err != nil {
		return 0, err
	}
	t.bodies = append(t.bodies, body{payload, seq})
	return seq, nil
}

// finish removes the bodies this transaction stored for jobs that were
// already queued.
func (t *ingestTx) finish(ctx context.Context) error {
	if !t.orphans {
		return nil
	}
	for _, b := range t.bodies {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM bodies WHERE seq = ? AND refs = 0`, b.seq); err != nil {
			return fmt.Errorf("remove unused payload: %w", t.s.classify(err))
		}
	}
	return nil
}

// payloadArg keeps a nil payload from becoming NULL.
func payloadArg(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

// Lease takes, for each webhook of req.Want, up to its count of due queued
// jobs, oldest due first, and reports when each one's earliest job still
// queued is due. Leases are ordered by webhook id, then due.
func (s *Store) Lease(ctx context.Context, req store.LeaseRequest) (store.LeaseResult, error) {
	ids := make([]string, 0, len(req.Want))
	for id := range req.Want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	res := store.LeaseResult{Next: map[string]time.Time{}}
	if len(ids) == 0 {
		return res, nil
	}
	until := req.Now.Add(req.For)
	// Tokens are this base and the job's row: new for every lease.
	base := newToken() + "."
	err := s.write(ctx, func(tx *txn) error {
		for _, id := range ids {
			if n := req.Want[id]; n > 0 {
				leases, err := leaseJobs(ctx, tx, id, req.Now, until, n, base)
				if err != nil {
					return err
				}
				res.Leases = append(res.Leases, leases...)
			}
			var next sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT min(due) FROM queue WHERE webhook_id = ? AND lease_until = 0`, id).Scan(&next); err != nil {
				return fmt.Errorf("find next job of webhook %q: %w", id, err)
			}
			if next.Valid {
				res.Next[id] = fromNanos(next.Int64)
			}
		}
		return nil
	})
	if err != nil {
		return store.LeaseResult{}, fmt.Errorf("lease jobs: %w", err)
	}
	return res, nil
}

// leaseJobs leases up to n queued jobs of a webhook due at now, oldest due
// first, until until, and returns them in that order.
func leaseJobs(ctx context.Context, tx *txn, webhookID string, now, until time.Time, n int, base string) ([]store.Lease, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE queue SET attempts = attempts + 1, lease_until = ?1, token = ?2 || seq
		WHERE seq IN (SELECT seq FROM queue WHERE webhook_id = ?3 AND lease_until = 0 AND due <= ?4 ORDER BY due, seq LIMIT ?5)
		RETURNING `+queueCols+`, token, seq`, nanos(until), base, webhookID, nanos(now), n)
	if err != nil {
		return nil, fmt.Errorf("lease jobs of webhook %q: %w", webhookID, err)
	}
	defer rows.Close()
	var leases []store.Lease
	var seqs []int64
	for rows.Next() {
		var l store.Lease
		var seq int64
		if l.Job, err = scanJob(rows, &l.Token, &seq); err != nil {
			return nil, fmt.Errorf("read leased jobs of webhook %q: %w", webhookID, err)
		}
		l.Until = until
		leases = append(leases, l)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read leased jobs of webhook %q: %w", webhookID, err)
	}
	// RETURNING gives rows in no set order.
	sort.Sort(byDue{leases, seqs})
	return leases, nil
}

// byDue sorts leases by due, then row.
type byDue struct {
	l   []store.Lease
	seq []int64
}

func (b byDue) Len() int { return len(b.l) }
func (b byDue) Less(i, j int) bool {
	if !b.l[i].Due.Equal(b.l[j].Due) {
		return b.l[i].Due.Before(b.l[j].Due)
	}
	return b.seq[i] < b.seq[j]
}
func (b byDue) Swap(i, j int) {
	b.l[i], b.l[j] = b.l[j], b.l[i]
	b.seq[i], b.seq[j] = b.seq[j], b.seq[i]
}

// newToken returns a random lease token.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails on the platforms Go supports
	return hex.EncodeToString(b[:])
}

// leased reports the attempts and creation time of the job l holds, or
// store.ErrLeaseLost when l no longer holds it.
func leased(ctx context.Context, tx *txn, l store.Lease) (attempts int, created time.Time, err error) {
	var c int64
	err = tx.QueryRowContext(ctx, `SELECT attempts, created FROM queue WHERE id = ? AND lease_until > 0 AND token = ?`,
		l.ID, l.Token).Scan(&attempts, &c)
	if err == sql.ErrNoRows {
		return 0, time.Time{}, store.ErrLeaseLost
	}
	return attempts, fromNanos(c), err
}

// Fail records the failed attempt, and queues the job again at f.Due or, when
// f says it is exhausted, moves it to its webhook's dead letters.
func (s *Store) Fail(ctx context.Context, l store.Lease, f store.Failure) (dead bool, err error) {
	err = s.write(ctx, func(tx *txn) error {
		attempts, created, err := leased(ctx, tx, l)
		if err != nil {
			return err
		}
		dead = f.Exhausted(attempts, created)
		if dead {
			if _, err := s.bury(ctx, tx, `id = ?`, []any{l.ID}, f.Error, f.Now); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `UPDATE queue SET due = ?, token = '', lease_until = 0 WHERE id = ?`,
			nanos(f.Due), l.ID); err != nil {
			return err
		}
		e := f.Entry
		e.WebhookID = l.WebhookID
		return s.record(ctx, tx, e)
	})
	if err != nil {
		return false, fmt.Errorf("fail job %q: %w", l.ID, err)
	}
	return dead, nil
}

// Release queues the job again without counting the attempt. Its due time is
// the one it had, which had come when it was leased: it is due at once.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue SET attempts = max(attempts - 1, 0), token = '', lease_until = 0
			WHERE id = ? AND lease_until > 0 AND token = ?`, l.ID, l.Token)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrLeaseLost
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release job %q: %w", l.ID, err)
	}
	return nil
}

// Maintain requeues jobs whose lease ended at or before now, dead-letters
// queued jobs made more than maxAge before now (none when maxAge is 0), and
// forgets event ids whose until is not after now.
func (s *Store) Maintain(ctx context.Context, now time.Time, maxAge time.Duration) (store.Maintenance, error) {
	var m store.Maintenance
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue SET token = '', lease_until = 0
			WHERE lease_until > 0 AND lease_until <= ?`, nanos(now))
		if err != nil {
			return fmt.Errorf("reclaim expired leases: %w", err)
		}
		m.Reclaimed, err = affected(res)
		if err != nil {
			return err
		}
		if maxAge > 0 {
			// Through queue_age: a plain condition on created makes SQLite
			// scan the queue for the webhooks' DISTINCT.
			m.Expired, err = s.bury(ctx, tx, `seq IN (SELECT seq FROM queue WHERE lease_until = 0 AND created < ?)`, []any{nanos(now.Add(-maxAge))}, store.ExpiredError(maxAge), now)
			if err != nil {
				return fmt.Errorf("dead-letter expired jobs: %w", err)
			}
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM seen WHERE until <= ?`, nanos(now))
		if err != nil {
			return fmt.Errorf("forget expired event ids: %w", err)
		}
		m.Forgotten, err = affected(res)
		return err
	})
	if err != nil {
		return store.Maintenance{}, fmt.Errorf("maintain: %w", err)
	}
	return m, nil
}

func affected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}
