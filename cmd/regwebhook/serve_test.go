package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/fixtures"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// serve refuses to start on a config it cannot run: exit status 1, each
// problem on a line of its own, and nothing made on disk.
func TestServeRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, fmt.Sprintf(`version: 1
http: {addr: "127.0.0.1:0", shutdowngrace: soon}
store: {embedded: {path: %q}}
webhooks:
  - name: Hook
    uri: ci.example.com
  - name: hookb
    uri: http://ci.example.com/
    actions: [push, tag]
`, data))
	badLines := "regwebhook: " + bad + `:2: http.shutdowngrace: must be a duration with a unit, like "10s", "1m30s" or "24h", got "soon"` + "\n" +
		"regwebhook: " + bad + `:5: webhooks[0].name: "Hook" must be 5 to 50 lowercase letters and digits` + "\n" +
		"regwebhook: " + bad + `:9: webhooks[1].actions: "tag" is not one of push, delete, pull` + "\n"
	missing := filepath.Join(dir, "missing.yml")

	// A port someone else listens on, and a store directory another
	// regwebhook holds.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addrTaken := filepath.Join(dir, "addr-taken.yml")
	writeFile(t, addrTaken, fmt.Sprintf("http: {addr: %q}\nstore: {embedded: {path: %q}}\n", taken.Addr(), filepath.Join(dir, "data-addr")))
	held := filepath.Join(dir, "held")
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: held, Limits: store.Limits{History: 1, DeadLetters: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storeHeld := filepath.Join(dir, "store-held.yml")
	writeFile(t, storeHeld, fmt.Sprintf("http: {addr: \"127.0.0.1:0\"}\nstore: {embedded: {path: %q}}\n", held))

	for _, tc := range []struct {
		name    string
		args    []string
		env     string // REGWEBHOOK_CONFIG
		wantErr string
	}{
		{"bad file in --config", []string{"serve", "--config", bad}, "", badLines},
		{"bad file in REGWEBHOOK_CONFIG", []string{"serve"}, bad, badLines},
		{"missing file", []string{"serve", "--config", missing}, "",
			"regwebhook: read config file: open " + missing + ": no such file or directory\n"},
		{"address in use", []string{"serve", "--config", addrTaken}, "",
			fmt.Sprintf("regwebhook: listen on %[1]s (http.addr): listen tcp %[1]s: bind: address already in use\n", taken.Addr())},
		{"store directory in use", []string{"serve", "--config", storeHeld}, "",
			fmt.Sprintf("regwebhook: open embedded store in %[1]s: store directory %[1]s is in use by another regwebhook process (pid %d)\n", held, os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("REGWEBHOOK_CONFIG", tc.env)
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 1 {
				t.Errorf("run(%q) = %d, want 1", tc.args, code)
			}
			if diff := cmp.Diff(tc.wantErr, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %s", &stdout)
			}
		})
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("serve made its store directory from a bad config: stat %s: %v", data, err)
	}
}

// Without a config file, serve runs on every default: it listens on :5080,
// keeps its store in ./regwebhook-data, and stops on SIGTERM with status 0.
func TestServeDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	l, err := net.Listen("tcp", ":5080")
	if err != nil {
		t.Fatalf("port 5080, serve's default http.addr, is taken on this machine: this test needs it free: %v", err)
	}
	l.Close()

	dir := t.TempDir()
	p := start(t, dir, "serve")
	p.addr = "127.0.0.1:5080"
	p.waitOK(t, "/healthz")
	if _, err := os.Stat(filepath.Join(dir, "regwebhook-data", "regwebhook.db")); err != nil {
		t.Errorf("no store in ./regwebhook-data: %v", err)
	}

	// With no file to re-read, SIGHUP changes nothing (and does not end
	// the process, as it would by default).
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "SIGHUP ignored: no config file")
	p.waitOK(t, "/healthz")

	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 20*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0; log:\n%s", code, p.logs)
	}
}

// SIGHUP re-reads the webhooks of the config file: a webhook added to the
// file gets deliveries, and the one already there misses none. A file broken since is refused, the log says so, and
// the webhooks in force keep getting theirs.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	ra, rb := hooktest.New(t), hooktest.New(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "regwebhook.yml")
	common := fmt.Sprintf(`log: {level: info}
http: {addr: %q, shutdowngrace: 2s}
store: {embedded: {path: %q}}
delivery: {retry: {initial: 50ms, max: 1s}}
`, addr, dataDir(dir))
	hookA := fmt.Sprintf("  - {name: reloadhooka, uri: %q}\n", ra.URL()+"/a")
	hookB := fmt.Sprintf("  - {name: reloadhookb, uri: %q}\n", rb.URL()+"/b")
	writeFile(t, cfg, common+"webhooks:\n"+hookA)
	push, err := fixtures.Load("push-manifest-by-tag")
	if err != nil {
		t.Fatal(err)
	}
	var proc *process
	posted := map[string]bool{}
	postNext := func() string {
		t.Helper()
		n := len(posted)
		if !post(http.DefaultClient, addr, envelope(t, push.Requests[0].Body, n)) {
			t.Fatalf("envelope %d not answered 2xx; log:\n%s", n, proc.logs)
		}
		posted[eventID(n)] = true
		return eventID(n)
	}

	proc = startServe(t, cfg, addr)
	first := postNext()
	waitDelivered(t, ra, map[string]bool{first: true}, 20*time.Second)

	writeFile(t, cfg, common+"webhooks:\n"+hookA+hookB)
	proc.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for rb.Count() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the added webhook got nothing after SIGHUP; log:\n%s", proc.logs)
		}
		postNext()
		time.Sleep(50 * time.Millisecond)
	}
	proc.waitLog(t, "reloaded webhooks from "+cfg)
	if got := received(t, rb); got[first] > 0 {
		t.Errorf("the added webhook got %s, an event from before it was added", first)
	}

	writeFile(t, cfg, common+"webhooks:\n"+hookA+hookB+"  - {name: reloadhookc, uri: not-a-url}\n")
	proc.signal(t, syscall.SIGHUP)
	proc.waitLog(t, "kept the webhooks in force")
	if !strings.Contains(proc.logs.String(), "webhooks[2].uri") {
		t.Errorf("the log does not say what is wrong with the file:\n%s", proc.logs)
	}
	after := map[string]bool{postNext(): true, postNext(): true}
	waitDelivered(t, rb, after, 20*time.Second)
	// The first webhook, in the file all along, got every event.
	waitDelivered(t, ra, posted, 20*time.Second)
}

// serve collects garbage at GOGC 400 unless the environment sets GOGC, as
// its /metrics shows; an operator's GOGC wins.
func TestServeGOGC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	for _, tc := range []struct{ env, want string }{
		{"", "go_gc_gogc_percent 400\n"},
		{"150", "go_gc_gogc_percent 150\n"},
	} {
		t.Run("GOGC="+tc.env, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			dir := t.TempDir()
			addr := freeAddr(t)
			cfg := filepath.Join(dir, "regwebhook.yml")
			writeFile(t, cfg, fmt.Sprintf("http: {addr: %q}\nstore: {embedded: {path: %q}}\n", addr, dataDir(dir)))
			startServe(t, cfg, addr)
			if body := getText(t, "http://"+addr+"/metrics"); !strings.Contains(body, tc.want) {
				t.Errorf("/metrics lacks %q; its go_gc lines:\n%s", tc.want, grepLines(body, "go_gc_gogc"))
			}
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
