package main

import (
	"context"
	"os"
	"testing"
)

// The floor's database opens in a directory given relative to the working
// directory, as the default --floor-dir "." gives it, and keeps what it
// is given.
func TestSQLQueueOpensInARelativeDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("floor", 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q, err := openSQLQueue(ctx, "floor", "full")
	if err != nil {
		t.Fatalf("open in a relative directory: %v", err)
	}
	defer q.close()
	if err := q.put(ctx, []byte("envelope")); err != nil {
		t.Fatal(err)
	}
	got, err := q.take(ctx, 10)
	if err != nil || len(got) != 1 || string(got[0]) != "envelope" {
		t.Fatalf("take = %q, %v; want the one envelope put", got, err)
	}
	if _, err := os.Stat("floor/floor.db"); err != nil {
		t.Errorf("the database is not in the directory given: %v", err)
	}
}
