// Package sqlitetest helps tests watch the embedded store from outside.
package sqlitetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // the driver the store uses

	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
)

// WriteProbe opens the database of the store in dir read-only, on a
// connection of its own, and returns a function that reports SQLite's
// data_version (which changes when another connection commits) and the
// WAL's size: both stay the same while the store writes nothing.
func WriteProbe(t testing.TB, dir string) func() (version, walBytes int64) {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(dir, sqlite.DBFile)
	probe, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: dbPath, RawQuery: "mode=ro"}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	conn, err := probe.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() (version, walBytes int64) {
		t.Helper()
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dbPath + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return version, fi.Size()
	}
}
