package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/internal/fixtures"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// Killed with SIGKILL while jobs are leased and many are queued, then
// restarted on the same data directory, regwebhook delivers every (event,
// webhook) whose envelope it answered 2xx. Duplicates are allowed
// (at-least-once) and reported.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs regwebhook as a process")
	}
	const events = 1000
	// The webhooks hold their answers until every envelope is posted, so
	// that many jobs are queued when the process is killed however fast
	// this machine posts and delivers.
	hooks := []*hooktest.Receiver{
		hooktest.New(t, hooktest.BlackHole(), hooktest.Delay(100*time.Millisecond)),
		hooktest.New(t, hooktest.BlackHole(), hooktest.Delay(100*time.Millisecond)),
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "regwebhook.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
log: {level: warn}
http: {addr: "%s", shutdowngrace: 5s}
store: {embedded: {path: "%s"}}
delivery: {workers: 16, perwebhook: 8, timeout: 5s, lease: 10s, retry: {initial: 50ms, max: 1s}}
webhooks:
  - {name: crashhooka, uri: "%s/a"}
  - {name: crashhookb, uri: "%s/b"}
`, addr, filepath.Join(dir, "data"), hooks[0].URL(), hooks[1].URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	push, err := fixtures.Load("push-manifest-by-tag")
	if err != nil {
		t.Fatal(err)
	}

	bodies := make([][]byte, events)
	for n := range bodies {
		bodies[n] = envelope(t, push.Requests[0].Body, n)
	}

	p := startServe(t, cfg, addr)
	// Post as the registry does, four at a time: an envelope counts once it
	// is answered 2xx.
	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		next     = make(chan int)
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				resp, err := client.Post("http://"+addr+"/v1/notifications",
					"application/vnd.docker.distribution.events.v2+json", bytes.NewReader(bodies[n]))
				if err != nil {
					continue // the process is gone: not answered
				}
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					mu.Lock()
					answered[fmt.Sprintf("crash-event-%05d", n)] = true
					mu.Unlock()
				}
			}
		}()
	}
	for n := 0; n < events; n++ {
		next <- n
	}
	close(next)
	wg.Wait()

	for _, h := range hooks {
		h.Release()
	}
	// Kill while at least one job is leased (a request in flight) and at
	// least 100 are queued (not yet received by the webhooks).
	deadline := time.Now().Add(30 * time.Second)
	for hooks[0].InFlight()+hooks[1].InFlight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery in flight")
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	delivered := hooks[0].Count() + hooks[1].Count()
	if queued := 2*len(answered) - delivered; queued < 100 {
		t.Fatalf("killed with only %d jobs queued; the test needs at least 100", queued)
	}
	t.Logf("killed with %d of %d envelopes answered, %d deliveries received", len(answered), events, delivered)

	startServe(t, cfg, addr)
	for i, h := range hooks {
		got := map[string]int{}
		deadline := time.Now().Add(2 * time.Minute)
		for len(got) < len(answered) {
			if time.Now().After(deadline) {
				t.Fatalf("webhook %d: %d of %d events delivered after the restart", i, len(got), len(answered))
			}
			time.Sleep(50 * time.Millisecond)
			got = map[string]int{}
			for _, r := range h.Requests() {
				var p struct{ ID string }
				r.Decode(t, &p)
				if answered[p.ID] {
					got[p.ID]++
				}
			}
		}
		dups := 0
		for _, n := range got {
			dups += n - 1
		}
		t.Logf("webhook %d: all %d answered events delivered, %d duplicates", i, len(answered), dups)
	}
}
