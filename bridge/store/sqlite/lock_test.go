package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

// childDirEnv, when set, makes TestOpenInChild open that directory, as a
// second regwebhook process would; it is how the tests below start one.
const childDirEnv = "REGWEBHOOK_SQLITE_CHILD_DIR"

// TestOpenInChild runs only as the child of the tests below: it opens the
// directory, prints the error or "opened", and exits without closing.
func TestOpenInChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("runs only as a child process")
	}
	_, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, Limits: storetest.Limits()})
	if err != nil {
		fmt.Println(err)
	} else {
		fmt.Println("opened")
	}
	os.Exit(0) // without Close: the kernel drops the lock with the process
}

// openInChild opens dir in another process and returns what it printed.
func openInChild(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenInChild$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestAnotherProcessCannotOpenADirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	want := fmt.Sprintf("store directory %s is in use by another regwebhook process (pid %d)", dir, os.Getpid())
	if got := openInChild(t, dir); got != want {
		t.Errorf("child opening a directory in use: got %q, want %q", got, want)
	}
	s.Close()
	if got := openInChild(t, dir); got != "opened" {
		t.Errorf("child opening a directory released: got %q", got)
	}
	// The child died holding the lock without closing: the directory is free.
	open(t, dir)
}

func TestOpenInADirectoryWithAnOddName(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a dir?x=1#%20", "new")
	s := open(t, dir)
	w := &rule.Webhook{ID: "w", Name: "webhook1"}
	if err := s.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{sqlite.DBFile, sqlite.DBFile + "-wal", sqlite.LockFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s is not in the directory: %v", name, err)
		}
	}
	s.Close()
	s = open(t, dir)
	got, err := s.Webhooks(ctx)
	if err != nil || len(got) != 1 {
		t.Errorf("webhooks after reopen: got %v, error %v; want the one made", got, err)
	}
}
