package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// cliResult is what one run of the CLI did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs `regwebhook args...` in this process, as a user would run it:
// the real CLI, talking HTTP to whatever server the args and environment
// name.
func cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// cliOK runs the CLI and fails the test unless it exits 0; it returns
// stdout.
func cliOK(t *testing.T, args ...string) string {
	t.Helper()
	r := cli(t, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("regwebhook %s: exit %d, want 0\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// cliJSON runs the CLI, which must exit 0, and decodes its stdout into v.
func cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := cliOK(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("regwebhook %s: stdout is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cliFails runs the CLI and checks that it exits with code and prints
// wantErr on stderr.
func cliFails(t *testing.T, code int, wantErr string, args ...string) cliResult {
	t.Helper()
	r := cli(t, args...)
	if r.code != code {
		t.Errorf("regwebhook %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, code, r.stderr)
	}
	if r.stderr != wantErr {
		t.Errorf("regwebhook %s: stderr\n got: %q\nwant: %q", strings.Join(args, " "), r.stderr, wantErr)
	}
	return r
}

// poll calls cond until it returns true, failing the test with what()
// after timeout.
func poll(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushPayload is what a receiver needs of a push delivery.
type pushPayload struct {
	Action string `json:"action"`
	Target struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
}

// pushesGot lists the repository:tag of every tagged push r got, in order.
func pushesGot(t *testing.T, r *hooktest.Receiver) []string {
	t.Helper()
	var got []string
	for _, q := range r.Requests() {
		if q.Header.Get("X-Regwebhook-Event") != "push" {
			continue
		}
		var p pushPayload
		q.Decode(t, &p)
		if p.Target.Tag != "" {
			got = append(got, p.Target.Repository+":"+p.Target.Tag)
		}
	}
	return got
}

// waitPush waits until r got the push of ref (repository:tag) and returns
// that request.
func waitPush(t *testing.T, r *hooktest.Receiver, ref string) hooktest.Request {
	t.Helper()
	var found hooktest.Request
	poll(t, 20*time.Second, func() bool {
		for _, q := range r.Requests() {
			if q.Header.Get("X-Regwebhook-Event") != "push" {
				continue
			}
			var p pushPayload
			q.Decode(t, &p)
			if p.Target.Repository+":"+p.Target.Tag == ref {
				found = q
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("%s got no push of %s:\n%s", r.URL(), ref, hooktest.Describe(r.Requests()))
	})
	return found
}

// serveConfig writes a config file for serve on addr, with an embedded
// store under dir and the YAML extra after it, and returns its path.
func serveConfig(t *testing.T, dir, addr, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "regwebhook.yml")
	writeFile(t, cfg, fmt.Sprintf(`log: {level: info}
http: {addr: %q, shutdowngrace: 2s}
store: {embedded: {path: %q}}
`, addr, dataDir(dir))+extra)
	return cfg
}
