package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
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
	var payload sql.NullString // NULL: a job leaseJobs reads only for its due time
	dest := append([]any{&j.ID, &j.WebhookID, &j.EventID, &j.Action, &j.ContentType, &created, &j.Redelivery, &j.Attempts, &due, &payload}, extra...)
	if err := r.Scan(dest...); err != nil {
		return store.Job{}, err
	}
	j.Created, j.Due, j.Payload = fromNanos(created), fromNanos(due), payload.String
	return j, nil
}

// Ingest runs fn once in a transaction (BEGIN IMMEDIATE: it holds the write
// lock from the start, so it never fails to upgrade), perhaps with other
// writes (see runBatch), and commits what fn did if fn returns nil; it
// returns once that is durable. fn's error is returned as it is. fn must not
// call other methods of s while it runs: the store's one connection is its.
//
// The leases of jobs fn enqueued leased (store.HandoffTx) are held from the
// moment they are added, so that no Lease takes their jobs once committed;
// a run whose transaction is undone (fn's error, another write's in the
// batch that ran it first, a failed commit) lets go of them.
func (s *Store) Ingest(ctx context.Context, fn func(store.Tx) error) error {
	var it *ingestTx
	o := &op{ctx: ctx, fn: func(tx *txn) error {
		if it != nil {
			it.unhand() // the batch that ran it before was undone
		}
		it = &ingestTx{s: s, tx: tx}
		if err := fn(it); err != nil {
			return err
		}
		return it.finish(ctx)
	}}
	err := s.commit(o)
	if (err != nil || o.err != nil) && it != nil {
		it.unhand()
	}
	if err != nil {
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
	// handed: the leases of the jobs EnqueueLeased added, their tokens a
	// random base (made once) and the job's row, as Lease makes them.
	handed []store.Lease
	base   string
}

// body is a payload stored in bodies, and its row.
type body struct {
	payload string
	seq     int64
}

var _ store.HandoffTx = (*ingestTx)(nil)

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
	_, err := t.insert(ctx, j)
	return err
}

// EnqueueLeased adds j as Enqueue does, held by this process until until
// (see leases): Lease skips it from now on, and Ingest lets go of it if
// the transaction is undone.
func (t *ingestTx) EnqueueLeased(ctx context.Context, j store.Job, until time.Time) error {
	seq, err := t.insert(ctx, j)
	if err != nil || seq == 0 {
		return err
	}
	if t.base == "" {
		t.base = newToken() + "."
	}
	l := store.Lease{Job: j, Token: t.base + strconv.FormatInt(seq, 10), Until: until}
	l.Attempts++
	ls := t.s.leases
	ls.mu.Lock()
	ls.add(l.ID, held{webhookID: l.WebhookID, seq: seq, token: l.Token, until: until, attempts: l.Attempts, created: l.Created, handed: true})
	ls.mu.Unlock()
	t.handed = append(t.handed, l)
	return nil
}

// Handed returns the leases of the jobs EnqueueLeased added.
func (t *ingestTx) Handed() []store.Lease {
	return t.handed
}

// unhand lets go of the leases EnqueueLeased took: their jobs were not
// committed.
func (t *ingestTx) unhand() {
	t.s.leases.mu.Lock()
	defer t.s.leases.mu.Unlock()
	for _, l := range t.handed {
		t.s.leases.drop(l.ID, l.Token)
	}
	t.handed = nil
}

// insert adds j to the queue unless a job with its ID is there, and
// returns its row (0: not added).
func (t *ingestTx) insert(ctx context.Context, j store.Job) (int64, error) {
	body, err := t.body(ctx, j.Payload)
	if err != nil {
		return 0, fmt.Errorf("enqueue job %q: store payload: %w", j.ID, t.s.classify(err))
	}
	var seq int64
	err = t.tx.QueryRowContext(ctx, `INSERT INTO queue (id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING seq`,
		j.ID, j.WebhookID, j.EventID, j.Action, j.ContentType, nanos(j.Created), j.Redelivery, j.Attempts, nanos(j.Due), body).Scan(&seq)
	switch {
	case err == sql.ErrNoRows: // queued already
		t.orphans = true
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("enqueue job %q: %w", j.ID, t.s.classify(err))
	}
	return seq, nil
}

// body returns the row of payload in bodies, storing it unless this
// transaction already did. A new body has no refs until a job points at it.
func (t *ingestTx) body(ctx context.Context, payload string) (int64, error) {
	for _, b := range t.bodies {
		if b.payload == payload {
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

// payloadArg binds a payload as a BLOB, as payloads always were (a string
// binds as TEXT), and an empty one not as NULL.
func payloadArg(p string) []byte {
	if p == "" {
		return []byte{}
	}
	return []byte(p)
}

// Lease takes, for each webhook of req.Want, up to its count of due queued
// jobs, oldest due first, and reports when each one's earliest job still
// queued is due. Leases are ordered by webhook id, then due. It writes
// nothing: leases are held in memory (see leases), and the queue is read on
// a connection of its own, which no write makes wait.
func (s *Store) Lease(ctx context.Context, req store.LeaseRequest) (store.LeaseResult, error) {
	if err := s.check(); err != nil {
		return store.LeaseResult{}, fmt.Errorf("lease jobs: %w", err)
	}
	ids := make([]string, 0, len(req.Want))
	for id := range req.Want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	res := store.LeaseResult{Next: map[string]time.Time{}}
	until := req.Now.Add(req.For)
	// Tokens are this base and the job's row: new for every lease.
	base := newToken() + "."
	ls := s.leases
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, id := range ids {
		leases, next, err := s.leaseJobs(ctx, id, req.Now, until, max(0, req.Want[id]), base, ls.rows(id))
		if err != nil {
			// Not one lease of this call reaches a worker: let go of all.
			for _, l := range res.Leases {
				ls.drop(l.ID, l.Token)
			}
			return store.LeaseResult{}, fmt.Errorf("lease jobs: %w", s.classify(err))
		}
		res.Leases = append(res.Leases, leases...)
		if !next.IsZero() {
			res.Next[id] = next
		}
	}
	return res, nil
}

// leaseJobs leases up to n due jobs of a webhook, oldest due first, and
// returns them with the due time of the first queued job it left (zero:
// none). skip are the rows of the webhook's jobs held. The caller holds
// s.leases.mu.
func (s *Store) leaseJobs(ctx context.Context, webhookID string, now, until time.Time, n int, base string, skip []int64) ([]store.Lease, time.Time, error) {
	ls := s.leases
	skipped := "[]"
	if len(skip) > 0 {
		b, _ := json.Marshal(skip)
		skipped = string(b)
	}
	// The jobs not held, by due, read until n are leased or one is not due:
	// that one tells when the webhook has a job due next.
	rows, err := s.leaseStmt.QueryContext(ctx, webhookID, skipped, nanos(now))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read jobs of webhook %q: %w", webhookID, err)
	}
	defer rows.Close()
	var leases []store.Lease
	done := false
	defer func() {
		if !done { // none of them reaches a worker
			for _, l := range leases {
				ls.drop(l.ID, l.Token)
			}
		}
	}()
	var next time.Time
	for rows.Next() {
		var seq int64
		j, err := scanJob(rows, &seq)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("read jobs of webhook %q: %w", webhookID, err)
		}
		if _, ok := ls.byID[j.ID]; ok {
			continue // never (skip has every held row): a guard against leasing a job twice
		}
		if len(leases) == n || j.Due.After(now) {
			next = j.Due
			break
		}
		l := store.Lease{Job: j, Token: base + strconv.FormatInt(seq, 10), Until: until}
		l.Attempts++
		ls.add(l.ID, held{webhookID: webhookID, seq: seq, token: l.Token, until: until, attempts: l.Attempts, created: l.Created})
		leases = append(leases, l)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("read jobs of webhook %q: %w", webhookID, err)
	}
	done = true
	return leases, next, nil
}

// leaseQuery is what leaseJobs reads: through queue_ready, in its order (no
// sort), skipping held rows on the index alone, and reading the payload of
// due jobs only. It has no LIMIT: SQLite prepares a statement again each
// time a bound LIMIT changes (the value may change its plan), which cost
// four times the read; leaseJobs stops reading instead.
const leaseQuery = `SELECT id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due,
		CASE WHEN due <= ?3 THEN (SELECT payload FROM bodies WHERE bodies.seq = queue.body) END, seq
	FROM queue WHERE webhook_id = ?1 AND seq NOT IN (SELECT value FROM json_each(?2))
	ORDER BY due, seq`

// newToken returns a random lease token.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Fail records the failed attempt, and queues the job again at f.Due or, when
// f says it is exhausted, moves it to its webhook's dead letters.
func (s *Store) Fail(ctx context.Context, l store.Lease, f store.Failure) (dead bool, err error) {
	if err := s.check(); err != nil {
		return false, fmt.Errorf("fail job %q: %w", l.ID, err)
	}
	err = s.write(ctx, func(tx *txn) error {
		// Checked by the writer, as Maintain reclaims leases: a lease it
		// took back (and another worker took again) is lost.
		h, ok := s.leases.get(l.ID, l.Token)
		if !ok {
			return store.ErrLeaseLost
		}
		dead = f.Exhausted(h.attempts, h.created)
		// The attempt counts from now on: leases are not written.
		q, args := `UPDATE queue SET attempts = ?, due = ? WHERE id = ?`, []any{h.attempts, nanos(f.Due), l.ID}
		if dead {
			q, args = `UPDATE queue SET attempts = ? WHERE id = ?`, []any{h.attempts, l.ID}
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return store.ErrLeaseLost // deleted with its webhook
		}
		if dead {
			if _, err := s.bury(ctx, tx, `id = ?`, []any{l.ID}, f.Error, f.Now); err != nil {
				return err
			}
		}
		e := f.Entry
		e.WebhookID = l.WebhookID
		return s.record(ctx, tx, e)
	})
	if err != nil {
		return false, fmt.Errorf("fail job %q: %w", l.ID, err)
	}
	s.leases.release(l.ID, l.Token)
	return dead, nil
}

// Release queues the job again without counting the attempt. Its due time is
// the one it had, which had come when it was leased: it is due at once.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("release job %q: %w", l.ID, err)
	}
	if l.Token == "" || !s.leases.release(l.ID, l.Token) {
		return fmt.Errorf("release job %q: %w", l.ID, store.ErrLeaseLost)
	}
	return nil
}

// maxExpire bounds the jobs one Maintain dead-letters for their age; the
// next call takes the rest.
const maxExpire = 10000

// Maintain requeues jobs whose lease ended at or before now, dead-letters
// queued jobs made more than maxAge before now (none when maxAge is 0, at
// most maxExpire a call), and forgets event ids whose until is not after now.
func (s *Store) Maintain(ctx context.Context, now time.Time, maxAge time.Duration) (store.Maintenance, error) {
	if err := s.check(); err != nil {
		return store.Maintenance{}, fmt.Errorf("maintain: %w", err)
	}
	var m store.Maintenance
	// Both held until the write commits: the reclaimed jobs' attempts are
	// not in the queue before, the expiring jobs are in it until then.
	var reclaimed map[string]string // id: token
	var expiring []string
	ls := s.leases
	err := s.write(ctx, func(tx *txn) error {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		for _, id := range expiring { // held by a run of fn undone (see runBatch)
			ls.drop(id, "")
		}
		m, reclaimed, expiring = store.Maintenance{}, map[string]string{}, nil
		for id, h := range ls.byID {
			if h.token == "" || h.until.After(now) {
				continue
			}
			// Its attempt counts when it is leased again.
			if _, err := tx.ExecContext(ctx, `UPDATE queue SET attempts = ? WHERE id = ?`, h.attempts, id); err != nil {
				return fmt.Errorf("reclaim expired lease of job %q: %w", id, err)
			}
			reclaimed[id] = h.token
			m.Reclaimed++
		}
		if maxAge > 0 {
			old, err := s.expired(ctx, tx, now.Add(-maxAge))
			if err != nil {
				return fmt.Errorf("dead-letter expired jobs: %w", err)
			}
			for _, j := range old {
				ls.add(j.id, held{webhookID: j.webhookID, seq: j.seq})
				expiring = append(expiring, j.id)
			}
			if len(expiring) > 0 {
				list, _ := json.Marshal(expiring)
				m.Expired, err = s.bury(ctx, tx, `id IN (SELECT value FROM json_each(?))`, []any{string(list)}, store.ExpiredError(maxAge), now)
				if err != nil {
					return fmt.Errorf("dead-letter expired jobs: %w", err)
				}
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM seen WHERE until <= ?`, nanos(now))
		if err != nil {
			return fmt.Errorf("forget expired event ids: %w", err)
		}
		m.Forgotten, err = affected(res)
		return err
	})
	ls.mu.Lock()
	for _, id := range expiring {
		ls.drop(id, "")
	}
	if err == nil {
		for id, token := range reclaimed {
			ls.drop(id, token)
		}
	}
	ls.mu.Unlock()
	if err != nil {
		return store.Maintenance{}, fmt.Errorf("maintain: %w", err)
	}
	return m, nil
}

// expired returns up to maxExpire jobs made before then that no lease
// holds, through queue_age. The caller holds s.leases.mu.
func (s *Store) expired(ctx context.Context, tx *txn, then time.Time) ([]expiredJob, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, webhook_id, seq FROM queue WHERE created < ? ORDER BY created LIMIT ?`,
		nanos(then), maxExpire+len(s.leases.byID))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []expiredJob
	for rows.Next() && len(out) < maxExpire {
		var j expiredJob
		if err := rows.Scan(&j.id, &j.webhookID, &j.seq); err != nil {
			return nil, err
		}
		if _, ok := s.leases.byID[j.id]; !ok {
			out = append(out, j)
		}
	}
	return out, rows.Err()
}

type expiredJob struct {
	id, webhookID string
	seq           int64
}

func affected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}
