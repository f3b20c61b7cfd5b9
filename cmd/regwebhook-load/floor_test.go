package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// With --stop-on-eof the floor serves until its input ends, then exits as
// any program does (run stops it so, and a profiler it runs under, as
// --floor-wrap gives, writes its figures).
func TestFloorStopsWhenItsInputEnds(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.json")
	if err := os.WriteFile(routes, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	cmd := newFloorCmd()
	cmd.SetArgs([]string{"--stop-on-eof", "--routes", routes, "--store", "embedded", "--dir", dir})
	cmd.SetIn(inR)
	cmd.SetOut(outW)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(context.Background()) }()

	line, err := bufio.NewReader(outR).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("the floor's first line: %q, %v", line, err)
	}
	resp, err := http.Post(addr+"/v1/notifications", "application/json", strings.NewReader(`{"events":[]}`))
	if err != nil {
		t.Fatalf("post to the floor while its input is open: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post to the floor while its input is open: %s", resp.Status)
	}

	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the floor ended with %v, want no error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the floor still runs 30s after its input ended")
	}
}
