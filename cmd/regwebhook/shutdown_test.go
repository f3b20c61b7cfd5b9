package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/internal/fixtures"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// SIGTERM or SIGINT while the registry posts and deliveries are in flight:
// regwebhook stops taking envelopes, lets the deliveries in flight finish,
// and exits with status 0. Restarted on the same data directory, it
// delivers every event whose envelope it answered 2xx. Duplicates are
// allowed (at-least-once) and reported.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	push, err := fixtures.Load("push-manifest-by-tag")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sig    syscall.Signal
		events int
	}{
		{syscall.SIGTERM, 200},
		{syscall.SIGINT, 80},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			hook := hooktest.New(t, hooktest.Delay(300*time.Millisecond))
			dir := t.TempDir()
			addr := freeAddr(t)
			cfg := filepath.Join(dir, "regwebhook.yml")
			config := func(perWebhook int) string {
				return fmt.Sprintf(`
log: {level: info}
http: {addr: %q, shutdowngrace: 2s}
store: {embedded: {path: %q}}
delivery: {workers: %[3]d, perwebhook: %[3]d, timeout: 5s, lease: 10s, retry: {initial: 50ms, max: 1s}}
webhooks:
  - {name: shutdownhook, uri: %q}
`, addr, dataDir(dir), perWebhook, hook.URL())
			}
			// Slow deliveries at first, so that many jobs are still queued
			// at the signal.
			writeFile(t, cfg, config(4))
			bodies := make([][]byte, tc.events)
			for n := range bodies {
				bodies[n] = envelope(t, push.Requests[0].Body, n)
			}

			p := startServe(t, cfg, addr)
			// Post as the registry does, four at a time, on through the
			// shutdown: an envelope counts once it is answered 2xx.
			var (
				mu       sync.Mutex
				answered = map[string]bool{}
				next     = make(chan int)
				wg       sync.WaitGroup
			)
			client := &http.Client{Timeout: 10 * time.Second}
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range next {
						if post(client, addr, bodies[n]) {
							mu.Lock()
							answered[eventID(n)] = true
							mu.Unlock()
						}
					}
				}()
			}
			go func() {
				defer close(next)
				for n := range bodies {
					next <- n
				}
			}()

			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := len(answered)
				mu.Unlock()
				// Signal in the thick of it: deliveries made and in
				// flight, envelopes coming in.
				if n >= tc.events/4 && hook.Count() >= 8 && hook.InFlight() > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d envelopes answered, %d deliveries made, %d in flight: the test needs %d, 8 and 1; log:\n%s",
						n, hook.Count(), hook.InFlight(), tc.events/4, p.logs)
				}
				time.Sleep(time.Millisecond)
			}
			p.signal(t, tc.sig)
			if code := p.exitCode(t, 30*time.Second); code != 0 {
				t.Fatalf("exit status %d after %v, want 0; log:\n%s", code, tc.sig, p.logs)
			}
			wg.Wait()
			p.waitLog(t, "regwebhook shutting down")
			if _, err := net.DialTimeout("tcp", addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial %s after the exit: %v, want connection refused", addr, err)
			}
			delivered := len(received(t, hook))
			if delivered >= len(answered) {
				t.Fatalf("all %d answered events were delivered before the exit; the test needs some still queued", len(answered))
			}
			t.Logf("%v with %d of %d envelopes answered, %d events delivered, at most %d at once", tc.sig, len(answered), tc.events, delivered, hook.MaxInFlight())

			writeFile(t, cfg, config(32))
			p = startServe(t, cfg, addr)
			got := waitDelivered(t, hook, answered, time.Minute)
			dups := 0
			for _, n := range got {
				dups += n - 1
			}
			t.Logf("all %d answered events delivered, %d duplicates", len(answered), dups)
			p.signal(t, syscall.SIGTERM)
			if code := p.exitCode(t, 30*time.Second); code != 0 {
				t.Errorf("exit status %d after SIGTERM of the restarted process, want 0; log:\n%s", code, p.logs)
			}
		})
	}
}
