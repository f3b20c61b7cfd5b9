// Package sqlite is the embedded store: one SQLite file in WAL mode
// (modernc.org/sqlite, pure Go) in a directory that one process holds with a
// lock file.
//
// Every call runs on a single connection (SetMaxOpenConns(1)): SQLite has one
// writer at a time anyway, and with one connection database/sql queues the
// callers in Go instead of letting transactions race for the write lock and
// fail with SQLITE_BUSY. Reads wait behind writes; each is short.
package sqlite

import (
	"context"
	"database/sql"
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

	"github.com/regwebhook/regwebhook/bridge/store"
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
	db     *sql.DB
	lock   *os.File
	dir    string
	limits store.Limits

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in o.Dir. It fails when another
// process, or another Store of this one, holds the directory. As the lock
// guarantees that no worker of another process holds a lease, Open puts every
// leased job back in the queue: its worker died with the process before.
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
	s := &Store{lock: lock, dir: dir, limits: o.Limits}
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
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: filepath.Join(s.dir, DBFile), RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
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
	// The previous process died holding these leases.
	if _, err := db.ExecContext(ctx, `UPDATE jobs SET state = 'queued', token = '', lease_until = 0 WHERE state = 'leased'`); err != nil {
		return fmt.Errorf("requeue leased jobs: %w", err)
	}
	return nil
}

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
	err := s.read(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM jobs WHERE state = 'queued' AND due <= ?1),
			(SELECT count(*) FROM jobs WHERE state = 'queued' AND due > ?1),
			(SELECT count(*) FROM jobs WHERE state = 'leased'),
			(SELECT count(*) FROM dead_letters)`, nanos(now)).Scan(&d.Ready, &d.Delayed, &d.Leased, &d.Dead)
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

// read runs fn on the database outside a transaction.
func (s *Store) read(ctx context.Context, fn func(q querier) error) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.classify(fn(s.db))
}

// write runs fn in a transaction and commits it if fn returns nil. fn must
// not call other methods of s: the one connection is its.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.check(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.classify(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback() // after Commit a no-op
	if err := fn(tx); err != nil {
		return s.classify(err)
	}
	if err := tx.Commit(); err != nil {
		return s.classify(fmt.Errorf("commit: %w", err))
	}
	return nil
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
