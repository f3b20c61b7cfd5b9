package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"sync/atomic"
	"time"
)

// checkpointer copies committed pages from the WAL back into the database
// file on a connection of its own (a PASSIVE checkpoint, which neither waits
// for the writer nor holds it up), soon after each commit, so that the
// writer's own checkpoint (wal_autocheckpoint, 10,000 pages) finds little
// left to copy. Left to the writer, that checkpoint ran inside the commit
// that filled the WAL, every 0.4 s at 1,000 envelopes a second, and held it
// for 5–8 ms: answers' p99 of 4.5–6.4 ms against 2.4–3.4 with the
// checkpointer (docs/benchmarks-history.md, "Twenty-first round").
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
}

// checkpointEvery is how often the checkpointer looks for new commits.
const checkpointEvery = 20 * time.Millisecond

// startCheckpointer opens its connection to the database at path, with the
// store's synchronous mode (a checkpoint syncs the database file unless it
// is OFF), and starts it; commits counts the writer's commits.
func startCheckpointer(path, syncMode string, commits *atomic.Int64) (*checkpointer, error) {
	q := url.Values{}
	q.Add("_pragma", "synchronous("+syncMode+")")
	db, err := openDB(path, q)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(commits)
	return c, nil
}

func (c *checkpointer) run(commits *atomic.Int64) {
	defer close(c.done)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	var seen int64
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if n := commits.Load(); n != seen {
			seen = n
			// An error (busy with the writer's own checkpoint, a failing
			// disk) is left to that checkpoint and to the writer's commits,
			// which report it.
			_, _ = c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
