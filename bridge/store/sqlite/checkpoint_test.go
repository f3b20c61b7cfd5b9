package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
)

// Commits reach the database file soon after they are made, copied back from
// the WAL by the store's checkpointer, not only once the WAL holds 10,000
// pages (the writer's own checkpoint, which held the commit that ran it for
// milliseconds).
func TestCommitsAreCopiedIntoTheDatabaseFileSoon(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	db := filepath.Join(dir, sqlite.DBFile)
	before := fileSize(t, db)
	now := time.Now()
	payload := strings.Repeat("p", 600)
	for i := range 200 { // some 500 KB of jobs, a few thousand WAL pages
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for _, w := range []string{"w1", "w2", "w3", "w4"} {
				j := store.Job{ID: fmt.Sprintf("e%d-%s", i, w), WebhookID: w, EventID: fmt.Sprint("e", i),
					Action: "push", Payload: payload + fmt.Sprint(i), ContentType: "application/json", Created: now, Due: now}
				if err := tx.Enqueue(ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
	}
	want := before + 256<<10
	for deadline := time.Now().Add(10 * time.Second); fileSize(t, db) < want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes 10 s after the commits (%d before them), want at least %d: the WAL was not copied back", fileSize(t, db), before, want)
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
