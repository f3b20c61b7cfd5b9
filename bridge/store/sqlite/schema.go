package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations bring the schema from version i (PRAGMA user_version) to i+1.
// Append only: a released migration never changes.
//
// Times are unix nanoseconds (0: none). Payload is the last column of
// dead_letters so that reading the other columns never follows a large
// payload's overflow pages.
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE jobs (
	id           TEXT PRIMARY KEY,
	webhook_id   TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	action       TEXT NOT NULL,
	content_type TEXT NOT NULL,
	created      INTEGER NOT NULL,
	redelivery   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	due          INTEGER NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('queued', 'leased')),
	token        TEXT NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0,
	payload      BLOB NOT NULL
);
-- Lease: the due queued jobs of one webhook, oldest due first; Next: the first.
CREATE INDEX jobs_by_webhook ON jobs (webhook_id, state, due, id);
-- Depth counts, and expired leases.
CREATE INDEX jobs_by_state ON jobs (state, due);
-- Maintain: queued jobs older than maxage.
CREATE INDEX jobs_by_age ON jobs (state, created);

CREATE TABLE dead_letters (
	seq          INTEGER PRIMARY KEY,
	id           TEXT NOT NULL UNIQUE,
	webhook_id   TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	action       TEXT NOT NULL,
	content_type TEXT NOT NULL,
	created      INTEGER NOT NULL,
	redelivery   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	due          INTEGER NOT NULL,
	error        TEXT NOT NULL,
	died         INTEGER NOT NULL,
	payload      BLOB NOT NULL
);
CREATE INDEX dead_letters_by_webhook ON dead_letters (webhook_id, seq);

CREATE TABLE history (
	seq        INTEGER PRIMARY KEY,
	webhook_id TEXT NOT NULL,
	entry      BLOB NOT NULL
);
CREATE INDEX history_by_webhook ON history (webhook_id, seq);

CREATE TABLE webhooks (
	id     TEXT PRIMARY KEY,
	name   TEXT NOT NULL UNIQUE,
	source TEXT NOT NULL,
	spec   BLOB NOT NULL
);

CREATE TABLE seen (
	event_id TEXT PRIMARY KEY,
	until    INTEGER NOT NULL
);
CREATE INDEX seen_by_until ON seen (until);

CREATE TABLE manifests (
	repo       TEXT NOT NULL,
	digest     TEXT NOT NULL,
	media_type TEXT NOT NULL,
	PRIMARY KEY (repo, digest)
) WITHOUT ROWID;

-- A tag keeps its manifest's media type: the manifest may be deleted before
-- the tag delete that names it arrives.
CREATE TABLE tags (
	repo       TEXT NOT NULL,
	tag        TEXT NOT NULL,
	digest     TEXT NOT NULL,
	media_type TEXT NOT NULL,
	PRIMARY KEY (repo, tag)
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags (repo, digest);
`,

	// 2: the queue keyed by a sequence, each payload in a row of its own,
	// leases in memory.
	//
	// Jobs are queued and acked about in the order they were made, so rows
	// keyed by a growing number are written and deleted a few pages at a
	// time, where rows keyed by delivery id (a random UUID) took a page
	// each. The payload is written once for the jobs of an event that share
	// it (the webhooks of one format). A lease is not written at all (see
	// leases.go): a job's row is written when it is queued, when an attempt
	// fails, and deleted when it is done.
	`
CREATE TABLE bodies (
	seq     INTEGER PRIMARY KEY,
	refs    INTEGER NOT NULL, -- queue rows that point here (triggers keep it)
	payload BLOB NOT NULL
);

CREATE TABLE queue (
	seq          INTEGER PRIMARY KEY,
	id           TEXT NOT NULL UNIQUE,
	webhook_id   TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	action       TEXT NOT NULL,
	content_type TEXT NOT NULL,
	created      INTEGER NOT NULL,
	redelivery   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL, -- attempts that ended (or were reclaimed)
	due          INTEGER NOT NULL,
	body         INTEGER NOT NULL
);
-- Lease: the jobs of one webhook, oldest due first.
CREATE INDEX queue_ready ON queue (webhook_id, due);
-- Maintain: jobs older than maxage.
CREATE INDEX queue_age ON queue (created);

CREATE TRIGGER queue_ref AFTER INSERT ON queue BEGIN
	UPDATE bodies SET refs = refs + 1 WHERE seq = new.body;
END;
CREATE TRIGGER queue_unref AFTER DELETE ON queue BEGIN
	UPDATE bodies SET refs = refs - 1 WHERE seq = old.body;
	DELETE FROM bodies WHERE seq = old.body AND refs <= 0;
END;

INSERT INTO bodies (seq, refs, payload) SELECT rowid, 0, payload FROM jobs;
INSERT INTO queue (id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, body)
	SELECT id, webhook_id, event_id, action, content_type, created, redelivery, attempts, due, rowid
	FROM jobs ORDER BY created, id;
DROP TABLE jobs;
`,
}

// migrate applies the migrations the database has not had, each in its own
// transaction with the version it reaches.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this regwebhook knows (%d): it was written by a newer release", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if err := migrateOne(ctx, db, v); err != nil {
			return err
		}
	}
	return nil
}

func migrateOne(ctx context.Context, db *sql.DB, from int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	// PRAGMA takes no parameters; the value is an int.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, from+1)); err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	return nil
}
