package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// txn is the transaction writes run in. Its statements run prepared once
// the store has seen them: SQLite spends about as long preparing (parsing,
// planning) a small statement as running it, and writes run the same few
// dozen statements all the time.
//
// Its statements are not interrupted when their caller's context ends: a
// write checks its context before it starts (runBatch), each statement is
// short, and watching a context costs the driver a goroutine per statement.
type txn struct {
	*sql.Tx
	c *stmtCache
}

// ExecContext runs query, prepared when it was seen before.
func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.c.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs query, prepared when it was seen before.
func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.c.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query, prepared when it was seen before.
func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	if st := t.c.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// maxStmts bounds the statements kept prepared. The store's queries are
// constants (a few with a table's name in them), far fewer than this.
const maxStmts = 128

// stmtCache holds the statements prepared on the store's connection.
// database/sql cannot prepare a statement on a connection that a
// transaction holds, and the one connection is always a transaction's while
// a write runs; so a statement first seen in a transaction runs unprepared
// then, and is prepared before the next batch begins.
type stmtCache struct {
	mu      sync.Mutex
	ready   map[string]*sql.Stmt
	missing map[string]bool
}

func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, known := c.ready[query]
	if !known && len(c.ready)+len(c.missing) < maxStmts {
		if c.missing == nil {
			c.missing = map[string]bool{}
		}
		c.missing[query] = true
	}
	return st
}

// prepare prepares the statements seen since it last ran. It must run while
// no transaction holds the connection. A statement that fails to prepare
// stays unprepared (nil): it fails again, and is reported, where it runs.
func (c *stmtCache) prepare(ctx context.Context, db *sql.DB) {
	c.mu.Lock()
	missing := c.missing
	c.missing = nil
	c.mu.Unlock()
	for q := range missing {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			st = nil
		}
		c.mu.Lock()
		if c.ready == nil {
			c.ready = map[string]*sql.Stmt{}
		}
		c.ready[q] = st
		c.mu.Unlock()
	}
}

// close closes the prepared statements.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.ready {
		if st != nil {
			st.Close()
		}
		delete(c.ready, q)
	}
}
