package main

import (
	"bufio"
	"fmt"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
)

// Helpers of the fault tests (fault_test.go).

// forEachStore runs the test on each store, with the store: section of a
// config file: the embedded store in a directory of the subtest's own, and
// the shared Redis under a prefix of its own.
func forEachStore(t *testing.T, run func(t *testing.T, store string)) {
	for _, name := range []string{"embedded", "redis"} {
		t.Run(name, func(t *testing.T) {
			var store string
			if name == "embedded" {
				store = fmt.Sprintf("store: {embedded: {path: %q}}", filepath.Join(t.TempDir(), "data"))
			} else {
				addr, prefix := redistest.Shared(t)
				store = fmt.Sprintf("store: {driver: redis, redis: {addr: %q, prefix: %q}}", addr, prefix)
			}
			run(t, store)
		})
	}
}

// faultConfig writes a config with the store, the delivery: section and
// the webhooks (YAML flow mappings, one a line), and returns its path and
// the address it listens on.
func faultConfig(t *testing.T, store, delivery string, webhooks ...string) (cfg, addr string) {
	t.Helper()
	addr = freeAddr(t)
	cfg = filepath.Join(t.TempDir(), "regwebhook.yml")
	writeFile(t, cfg, fmt.Sprintf("log: {level: warn}\nhttp: {addr: %q, shutdowngrace: 1s}\n%s\n%s\nwebhooks:\n  - %s\n",
		addr, store, delivery, strings.Join(webhooks, "\n  - ")))
	return cfg, addr
}

// registryClient posts envelopes as a registry does: one at a time, on one
// connection, each again until it is answered 2xx. A regwebhook that was
// killed only delays the post.
type registryClient struct {
	addr     func() string
	client   *http.Client
	answered atomic.Int64 // envelopes answered 2xx
	refused  atomic.Int64 // posts not answered 2xx
}

func newRegistryClient(addr func() string) *registryClient {
	return &registryClient{addr: addr, client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxConnsPerHost: 1},
	}}
}

// send posts body until it is answered 2xx, for up to two minutes; it is
// safe to call from a goroutine of the test.
func (r *registryClient) send(t *testing.T, body []byte) bool {
	deadline := time.Now().Add(2 * time.Minute)
	for !post(r.client, r.addr(), body) {
		r.refused.Add(1)
		if time.Now().After(deadline) {
			t.Errorf("an envelope was not answered 2xx in two minutes")
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.answered.Add(1)
	return true
}

// scrape returns what regwebhook's /metrics says, by series
// (`name{label="value",...}` as exported).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitQueueEmpty waits until the queue regwebhook at addr reports holds no
// job ready, delayed or being delivered: nothing more is to come.
func waitQueueEmpty(t *testing.T, addr string) {
	t.Helper()
	var m map[string]float64
	poll(t, time.Minute, func() bool {
		m = scrape(t, addr)
		return m[`regwebhook_queue_jobs{state="ready"}`]+m[`regwebhook_queue_jobs{state="delayed"}`]+
			m[`regwebhook_queue_jobs{state="leased"}`] == 0
	}, func() string {
		return fmt.Sprintf("the queue is not empty: ready %v, delayed %v, leased %v", m[`regwebhook_queue_jobs{state="ready"}`],
			m[`regwebhook_queue_jobs{state="delayed"}`], m[`regwebhook_queue_jobs{state="leased"}`])
	})
}

// duplicates is how many deliveries beyond the first each event got.
func duplicates(got map[string]int) int {
	n := 0
	for _, c := range got {
		n += c - 1
	}
	return n
}

// matching returns the ids of the events 0..n-1 (tags t0, t1, …) whose tag
// matches glob.
func matching(n int, glob string) map[string]bool {
	out := map[string]bool{}
	for i := range n {
		if ok, _ := path.Match(glob, fmt.Sprintf("t%d", i)); ok {
			out[eventID(i)] = true
		}
	}
	return out
}
