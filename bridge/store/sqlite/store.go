// Package sqlite is the embedded store: one SQLite file in WAL mode
// (modernc.org/sqlite, pure Go) in a directory that one process holds with a
// lock file.
//
// Every write runs on a single connection (SetMaxOpenConns(1)): SQLite has
// one writer at a time anyway, and with one connection database/sql queues
// the callers in Go instead of letting transactions race for the write lock
// and fail with SQLITE_BUSY. Reads (and Lease, which writes nothing: see
// leases) run on connections of their own, which WAL lets read the last
// commit while the writer writes: they never wait for a sync.
//
// Writes that arrive while another commits are committed together (group
// commit, see runBatch): one transaction, one sync of the WAL, and a write
// that fails undoes only itself. Every write still returns only once the
// commit that holds it is durable (acks excepted, see writeLazy), so the
// guarantees are those of a transaction per write; under load, many writes
// share each sync.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/batch"
)

// File names inside Options.Dir.
const (
	DBFile   = "regwebhook.db"
	LockFile = "regwebhook.lock"
)

// Options configure Open.
type Options struct {
	// Dir holds the database and the lock file; it is created if missing.
	Dir string
	// Sync is "full" (the default: a commit survives a power loss) or
	// "normal" (a commit survives a crash of the process, but the last
	// commits may be lost on a power loss; faster).
	Sync string
	// Limits bound history and dead letters per webhook; both must be positive.
	Limits store.Limits
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db     *sql.DB // the writer
	rdb    *sql.DB // readers
	leases *leases
	// leaseStmt is leaseQuery, prepared on rdb.
	leaseStmt *sql.Stmt
	lock      *os.File
	dir       string
	limits    store.Limits
	writes    *batch.Runner[*op]
	acks      *batch.Runner[*ackCall]
	// entries encodes the history entries of Ack.
	entries history.Encoder
	stmts   stmtCache
	trims   trims
	// syncFull: the store syncs fully (Options.Sync "full"); syncLazy: the
	// writer's connection is set to NORMAL for a batch of lazy writes (see
	// writeLazy). Only the writer reads and sets syncLazy.
	syncFull, syncLazy bool

	// durableAt: when the last write that must be durable was asked for
	// (unix nanoseconds); wait: lazyWait (see canWait).
	durableAt atomic.Int64
	wait      time.Duration

	// commits counts the writer's commits, for the checkpointer.
	commits atomic.Int64
	ckpt    *checkpointer

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in o.Dir. It fails when another
// process, or another Store of this one, holds the directory. Leases are held
// in memory (see leases): the jobs a previous process had leased are queued,
// as its workers died with it.
func Open(ctx context.Context, o Options) (*Store, error) {
	syncMode, err := syncPragma(o.Sync)
	if err != nil {
		return nil, err
	}
	if o.Limits.History <= 0 || o.Limits.DeadLetters <= 0 {
		return nil, fmt.Errorf("open store in %s: limits must be positive, got history %d and dead letters %d",
			o.Dir, o.Limits.History, o.Limits.DeadLetters)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", o.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: create directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{lock: lock, dir: dir, limits: o.Limits, leases: newLeases(), syncFull: syncMode == "FULL"}
	s.wait = lazyWait
	s.writes = batch.NewWaiting(maxBatch, s.wait, s.canWait, s.runBatch)
	s.acks = batch.New(maxBatch, s.runAcks)
	if err := s.open(ctx, syncMode); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	return s, nil
}

// open opens the database, brings its schema up to date and requeues leases.
func (s *Store) open(ctx context.Context, syncMode string) error {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+syncMode+")")
	// Savepoint journals (see runBatch) in memory, not in temporary files:
	// they only ever serve to roll back to a savepoint within a transaction.
	q.Add("_pragma", "temp_store(MEMORY)")
	// The queue's hot pages (index leaves, the tables' tails) change in
	// nearly every commit: copying them back into the database every 40 MB
	// of WAL rather than every 4 MB (the default) writes them far fewer
	// times. A larger page cache (16 MB, default 2 MB) keeps the indexes of
	// a large backlog in memory.
	q.Add("_pragma", "wal_autocheckpoint(10000)")
	q.Add("_pragma", "cache_size(-16000)")
	q.Set("_txlock", "immediate")
	path := filepath.Join(s.dir, DBFile)
	db, err := openDB(path, q)
	if err != nil {
		return err
	}
	s.db = db
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
		return err
	}
	r := url.Values{}
	r.Add("_pragma", "busy_timeout(5000)")
	r.Add("_pragma", "query_only(1)")
	rdb, err := openDB(path, r)
	if err != nil {
		return err
	}
	s.rdb = rdb
	rdb.SetMaxOpenConns(readers)
	rdb.SetMaxIdleConns(readers)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	if s.leaseStmt, err = rdb.PrepareContext(ctx, leaseQuery); err != nil {
		return fmt.Errorf("prepare lease query: %w", err)
	}
	s.ckpt, err = startCheckpointer(path, syncMode, &s.commits)
	return err
}

// openDB opens the database file at path with the driver's query
// parameters q (pragmas, the transaction lock).
func openDB(path string, q url.Values) (*sql.DB, error) {
	return sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String())
}

// readers bounds the connections that read.
const readers = 4

func syncPragma(mode string) (string, error) {
	switch mode {
	case "", "full":
		return "FULL", nil
	case "normal":
		return "NORMAL", nil
	}
	return "", fmt.Errorf("open store: sync %q is not full or normal", mode)
}

// Close closes the database and releases the directory. It is safe to call
// twice; calls after it fail with store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		var errs []error
		if s.ckpt != nil {
			if err := s.ckpt.close(); err != nil {
				errs = append(errs, fmt.Errorf("close store in %s: %w", s.dir, err))
			}
		}
		s.stmts.close()
		if s.leaseStmt != nil {
			s.leaseStmt.Close()
		}
		if s.rdb != nil {
			if err := s.rdb.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store in %s: %w", s.dir, err))
			}
		}
		if s.db != nil {
			if err := s.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store in %s: %w", s.dir, err))
			}
		}
		if err := unlockDir(s.lock); err != nil {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("ping store in %s: %w", s.dir, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM webhooks`).Scan(&n); err != nil {
		return fmt.Errorf("ping store in %s: %w", s.dir, s.classify(err))
	}
	return nil
}

// Depth counts jobs by state at now.
func (s *Store) Depth(ctx context.Context, now time.Time) (store.Depth, error) {
	var d store.Depth
	leased, _ := json.Marshal(s.leases.leased())
	err := s.read(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM queue WHERE due <= ?1 AND id NOT IN (SELECT value FROM json_each(?2))),
			(SELECT count(*) FROM queue WHERE due > ?1 AND id NOT IN (SELECT value FROM json_each(?2))),
			(SELECT count(*) FROM queue WHERE id IN (SELECT value FROM json_each(?2))),
			(SELECT count(*) FROM dead_letters)`, nanos(now), string(leased)).Scan(&d.Ready, &d.Delayed, &d.Leased, &d.Dead)
	})
	if err != nil {
		return store.Depth{}, fmt.Errorf("count jobs: %w", err)
	}
	return d, nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errClosed is what calls after Close return.
var errClosed = fmt.Errorf("%w: closed", store.ErrUnavailable)

func (s *Store) check() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// read runs fn on a reader, outside a transaction: it sees the last commit.
func (s *Store) read(ctx context.Context, fn func(q querier) error) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.classify(fn(s.rdb))
}

// write runs fn in a transaction and commits what it did if it returns nil,
// or undoes it if not; it returns once that is durable. fn must not call
// other methods of s: the one connection is its.
func (s *Store) write(ctx context.Context, fn func(tx *txn) error) error {
	return s.writeOp(&op{ctx: ctx, fn: fn})
}

// writeLazy is write for what a power loss may undo without losing anything
// (acks: their jobs would be delivered again): when it commits with none but
// other lazy writes, the commit does not wait for the disk (synchronous
// NORMAL). A commit that waits for the disk later makes it durable too, as
// the WAL is written in order. With wait, it may also wait for a durable
// write to commit with (see canWait).
func (s *Store) writeLazy(ctx context.Context, wait bool, fn func(tx *txn) error) error {
	return s.writeOp(&op{ctx: ctx, fn: fn, lazy: true, wait: wait})
}

func (s *Store) writeOp(o *op) error {
	if err := s.commit(o); err != nil {
		return err
	}
	return s.classify(o.err)
}

// maxBatch bounds the writes committed together.
const maxBatch = 256

// lazyWait is how long a batch of lazy writes (acks) may wait for a write
// that must be durable (an envelope's), to commit with it: one commit
// instead of two, and no second switch of the synchronous mode (see
// canWait).
const lazyWait = 2 * time.Millisecond

// canWait reports whether o may wait for a durable write to commit with:
// when o may wait at all (the acks of jobs handed off, see runAcks) and a
// durable write was asked for within lazyWait, so that another is likely
// to come before the wait ends (a registry sending serially sends its next
// envelope within about a millisecond of the answer). The workers of those
// acks wait with them, which costs nothing while their webhooks have no
// backlog (a job is handed off only then); acks of jobs leased from the
// queue, as a backlog drains, commit at once, whatever else comes, or a
// webhook's drain would slow to a worker's delivery plus the wait.
func (s *Store) canWait(o *op) bool {
	return o.lazy && o.wait && time.Now().UnixNano()-s.durableAt.Load() < int64(s.wait)
}

// op is one write: fn, run inside a batch's transaction, and its error.
type op struct {
	ctx  context.Context
	fn   func(tx *txn) error
	lazy bool  // see writeLazy
	wait bool  // lazy, and may wait for a durable write (see canWait)
	err  error // fn's own
}

// commit runs o in a batch; the error is the batch's (begin, commit), not
// o's own, which is in o.err.
func (s *Store) commit(o *op) error {
	if err := s.check(); err != nil {
		return err
	}
	if !o.lazy {
		s.durableAt.Store(time.Now().UnixNano())
	}
	return s.writes.Do(o)
}

// runBatch runs ops in one transaction (group commit) and commits. A write
// whose fn fails must undo only itself: the batch runs first without
// savepoints (writes rarely fail, and a savepoint copies every page a write
// changes into its journal), and when a write fails, all of it is undone and
// run again with a savepoint per write. So fns may run twice (as Ingest's
// contract allows), and change nothing but their transaction. It returns,
// per op, the error of the transaction: what kept the op from being
// committed whole, beyond its own fn's error.
func (s *Store) runBatch(ops []*op) []error {
	if err := s.syncFor(ops); err != nil {
		errs := make([]error, len(ops))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if len(ops) > 1 {
		if errs, ok := s.runTx(ops, false); ok {
			return errs
		}
	}
	errs, _ := s.runTx(ops, true)
	return errs
}

// syncFor sets the connection's synchronous mode for a batch: NORMAL when
// the store syncs fully and every op is lazy, the store's own otherwise.
// Only the writer runs it.
func (s *Store) syncFor(ops []*op) error {
	lazy := s.syncFull
	for _, o := range ops {
		lazy = lazy && o.lazy
	}
	if lazy == s.syncLazy {
		return nil
	}
	mode := "FULL"
	if lazy {
		mode = "NORMAL"
	}
	if _, err := s.db.ExecContext(context.Background(), `PRAGMA synchronous = `+mode); err != nil {
		if lazy {
			return nil // the batch commits fully: slower, as safe
		}
		// A batch that must be durable cannot commit under NORMAL.
		return s.classify(fmt.Errorf("set synchronous %s: %w", mode, err))
	}
	s.syncLazy = lazy
	return nil
}

// runTx runs ops in one transaction, each in a savepoint of its own when
// savepoints is set, and commits. Without savepoints, it gives up (ok
// false, nothing committed) at the first op whose fn fails.
func (s *Store) runTx(ops []*op, savepoints bool) (errs []error, ok bool) {
	errs = make([]error, len(ops))
	fail := func(err error) ([]error, bool) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, true
	}
	// Not any op's context: cancelling one must not roll back the others.
	ctx := context.Background()
	s.stmts.prepare(ctx, s.db)
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(s.classify(fmt.Errorf("begin: %w", err)))
	}
	defer sqlTx.Rollback() // after Commit a no-op
	tx := &txn{Tx: sqlTx, c: &s.stmts}
	alone := len(ops) == 1
	done := 0
	for i, o := range ops {
		o.err = nil
		if err := o.ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("begin: %w", err)
			continue
		}
		if alone || !savepoints {
			if o.err = o.fn(tx); o.err != nil {
				return errs, alone // alone: nothing to commit
			}
			done++
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT op`); err != nil {
			return fail(s.classify(fmt.Errorf("savepoint: %w", err)))
		}
		if o.err = o.fn(tx); o.err != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO op`); err != nil {
				return fail(s.classify(fmt.Errorf("roll back to savepoint: %w", err)))
			}
		} else {
			done++
		}
		if _, err := tx.ExecContext(ctx, `RELEASE op`); err != nil {
			return fail(s.classify(fmt.Errorf("release savepoint: %w", err)))
		}
	}
	if done == 0 {
		return errs, true
	}
	if err := tx.Commit(); err != nil {
		return fail(s.classify(fmt.Errorf("commit: %w", err)))
	}
	s.commits.Add(1)
	return errs, true
}

// classify marks err as store.ErrUnavailable when it says the database cannot
// be used now (closed, I/O error, disk full, locked), as opposed to a bad
// input or a lost lease.
func (s *Store) classify(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM:
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// nanos is how times are kept: unix nanoseconds, the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
