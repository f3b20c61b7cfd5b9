package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// process is regwebhook running as a child process: the test binary, which
// TestMain turns into regwebhook.
type process struct {
	cmd  *exec.Cmd
	addr string
	logs *logBuffer

	waitOnce sync.Once
	exited   chan struct{} // closed once cmd.Wait returned
}

// logBuffer collects the child's stdout and stderr; the test reads it while
// the child writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs `regwebhook args...` as a child process, in dir when it is not
// empty, with the test's environment but REGWEBHOOK_CONFIG. It is killed at
// the end of the test if it still runs.
func start(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGWEBHOOK_CONFIG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "REGWEBHOOK_TEST_MAIN=1")
	p := &process{cmd: cmd, logs: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // does nothing to a process already waited for
		<-p.waitExit()
	})
	return p
}

// waitExit waits for the process in the background; the channel is closed
// once it has exited and its output is all in logs. A test that called
// cmd.Wait itself still may call it.
func (p *process) waitExit() <-chan struct{} {
	p.waitOnce.Do(func() {
		go func() {
			p.cmd.Wait()
			close(p.exited)
		}()
	})
	return p.exited
}

// exitCode waits up to timeout for the process to exit and returns its exit
// status (-1 when a signal ended it).
func (p *process) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.waitExit():
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("regwebhook still runs %v later; its log:\n%s", timeout, p.logs)
		return 0
	}
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitLog waits until the process's log holds want.
func (p *process) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("regwebhook's log does not say %q:\n%s", want, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOK waits until GET path on the process's address answers 200.
func (p *process) waitOK(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("regwebhook did not answer 200 on %s%s: %v\n%s", p.addr, path, err, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `regwebhook serve --config cfg` and waits for /readyz.
func startServe(t *testing.T, cfg, addr string) *process {
	t.Helper()
	p := start(t, "", "serve", "--config", cfg)
	p.addr = addr
	p.waitOK(t, "/readyz")
	return p
}

// writeFile writes data to path whole: a reader sees the old file or the
// new one, never a part.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// envelope is a captured manifest push with its event id and tag made unique.
func envelope(t *testing.T, template []byte, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, template); err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(b.String(), "01a218ff-f893-73b4-a099-3f5c0c3fff2b", eventID(n))
	return []byte(strings.ReplaceAll(s, `"tag":"v1"`, fmt.Sprintf(`"tag":"t%d"`, n)))
}

// eventID is the event id of envelope n.
func eventID(n int) string { return fmt.Sprintf("crash-event-%05d", n) }

// post sends an envelope as the registry does and reports whether it was
// answered 2xx: only then is it regwebhook's to deliver.
func post(client *http.Client, addr string, body []byte) bool {
	resp, err := client.Post("http://"+addr+"/v1/notifications",
		"application/vnd.docker.distribution.events.v2+json", bytes.NewReader(body))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// received counts the deliveries r got of each event id.
func received(t *testing.T, r *hooktest.Receiver) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, q := range r.Requests() {
		var p struct{ ID string }
		q.Decode(t, &p)
		got[p.ID]++
	}
	return got
}

// waitDelivered waits until r got every event id of want at least once, and
// returns how many deliveries it got of each.
func waitDelivered(t *testing.T, r *hooktest.Receiver, want map[string]bool, timeout time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := received(t, r)
		var missing []string
		for id := range want {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			if len(missing) > 10 {
				missing = append(missing[:10], "…")
			}
			t.Fatalf("%d of %d events not delivered to %s after %v: %s", len(missing), len(want), r.URL(), timeout, strings.Join(missing, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dataDir is the embedded store's directory for a test's config.
func dataDir(dir string) string { return filepath.Join(dir, "data") }

// getText returns the body that GET url answers.
func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return string(b)
}
