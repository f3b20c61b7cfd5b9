package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// jobCols are the columns of a store.Job, in scanJob's order; dead_letters has
// them too.
const jobCols = `id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, payload`

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// scanJob reads jobCols, then extra.
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
	o := &op{ctx: ctx, fn: func(tx *txn) error { return fn(&ingestTx{s: s, tx: tx}) }}
	if err := s.commit(o); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return o.err
}

// ingestTx is the store.Tx of one Ingest.
type ingestTx struct {
	s  *Store
	tx *txn
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

// Enqueue queues job unless a job with its ID is queued or leased.
func (t *ingestTx) Enqueue(ctx context.Context, j store.Job) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')
		ON CONFLICT (id) DO NOTHING`,
		j.ID, j.WebhookID, j.EventID, j.Action, j.ContentType, nanos(j.Created), j.Redelivery, j.Attempts, nanos(j.Due), payloadArg(j.Payload))
	if err != nil {
		return fmt.Errorf("enqueue job %q: %w", j.ID, t.s.classify(err))
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
	err := s.write(ctx, func(tx *txn) error {
		for _, id := range ids {
			if n := req.Want[id]; n > 0 {
				jobs, err := dueJobs(ctx, tx, id, req.Now, n)
				if err != nil {
					return err
				}
				for _, j := range jobs {
					l := store.Lease{Job: j, Token: newToken(), Until: until}
					l.Attempts++
					if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'leased', attempts = ?, token = ?, lease_until = ? WHERE id = ?`,
						l.Attempts, l.Token, nanos(until), l.ID); err != nil {
						return fmt.Errorf("lease job %q: %w", l.ID, err)
					}
					res.Leases = append(res.Leases, l)
				}
			}
			var next sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT min(due) FROM jobs WHERE webhook_id = ? AND state = 'queued'`, id).Scan(&next); err != nil {
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

// dueJobs returns up to n queued jobs of a webhook due at now, oldest due first.
func dueJobs(ctx context.Context, tx *txn, webhookID string, now time.Time, n int) ([]store.Job, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs
		WHERE webhook_id = ? AND state = 'queued' AND due <= ? ORDER BY due, id LIMIT ?`, webhookID, nanos(now), n)
	if err != nil {
		return nil, fmt.Errorf("find due jobs of webhook %q: %w", webhookID, err)
	}
	defer rows.Close()
	var jobs []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("read due jobs of webhook %q: %w", webhookID, err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due jobs of webhook %q: %w", webhookID, err)
	}
	return jobs, nil
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
	err = tx.QueryRowContext(ctx, `SELECT attempts, created FROM jobs WHERE id = ? AND state = 'leased' AND token = ?`,
		l.ID, l.Token).Scan(&attempts, &c)
	if err == sql.ErrNoRows {
		return 0, time.Time{}, store.ErrLeaseLost
	}
	return attempts, fromNanos(c), err
}

// Ack deletes the delivered job and records e in its webhook's history.
func (s *Store) Ack(ctx context.Context, l store.Lease, e history.Entry) error {
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id = ? AND state = 'leased' AND token = ?`, l.ID, l.Token)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrLeaseLost
		}
		e.WebhookID = l.WebhookID
		return s.record(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("ack job %q: %w", l.ID, err)
	}
	return nil
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
		} else if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', due = ?, token = '', lease_until = 0 WHERE id = ?`,
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
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), token = '', lease_until = 0
			WHERE id = ? AND state = 'leased' AND token = ?`, l.ID, l.Token)
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
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', token = '', lease_until = 0
			WHERE state = 'leased' AND lease_until <= ?`, nanos(now))
		if err != nil {
			return fmt.Errorf("reclaim expired leases: %w", err)
		}
		m.Reclaimed, err = affected(res)
		if err != nil {
			return err
		}
		if maxAge > 0 {
			m.Expired, err = s.bury(ctx, tx, `state = 'queued' AND created < ?`, []any{nanos(now.Add(-maxAge))}, store.ExpiredError(maxAge), now)
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
