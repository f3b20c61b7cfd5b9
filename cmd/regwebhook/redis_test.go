package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
	redisstore "github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/internal/fixtures"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// Tests of several `regwebhook serve` processes sharing one Redis: the
// shared redis-server under a prefix of their own, or a redis-server of the
// test's own where the test kills, restarts or freezes it.

// redisReplicas starts n replicas of regwebhook on one Redis and prefix, all
// with the same config-file webhook, which delivers to hook, and waits until
// each is ready. The lease is short, so that jobs of a replica that died
// come back soon. They log at level.
func redisReplicas(t *testing.T, n int, redisAddr, prefix, level string, hook *hooktest.Receiver) []*process {
	t.Helper()
	dir := t.TempDir()
	var procs []*process
	for i := range n {
		addr := freeAddr(t)
		cfg := filepath.Join(dir, fmt.Sprintf("replica%d.yml", i))
		writeFile(t, cfg, fmt.Sprintf(`
log: {level: %s}
http: {addr: %q, shutdowngrace: 2s}
store: {driver: redis, redis: {addr: %q, prefix: %q}}
delivery: {workers: 16, perwebhook: 16, timeout: 2s, lease: 4s, retry: {initial: 50ms, max: 500ms}}
webhooks:
  - {name: replicahook, uri: "%s/hook"}
`, level, addr, redisAddr, prefix, hook.URL()))
		p := start(t, "", "serve", "--config", cfg)
		p.addr = addr
		procs = append(procs, p)
	}
	for _, p := range procs {
		p.waitOK(t, "/readyz")
	}
	return procs
}

// pushBodies returns n captured manifest pushes, each with its own event id
// (eventID) and tag.
func pushBodies(t *testing.T, n int) [][]byte {
	t.Helper()
	push, err := fixtures.Load("push-manifest-by-tag")
	if err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = envelope(t, push.Requests[0].Body, i)
	}
	return bodies
}

// load posts bodies round-robin to the replicas, eight at a time. Like a
// registry behind a load balancer, it posts an envelope that was not answered
// 2xx again, to the next replica, until one answers 2xx or a minute has
// passed. It returns the event ids answered 2xx. answered counts them as
// they come, for a test that acts mid-load.
type load struct {
	procs    []*process
	bodies   [][]byte
	answered atomic.Int64
	refused  atomic.Int64 // answers that were not 2xx, or no answer
}

func (l *load) run(t *testing.T) map[string]bool {
	t.Helper()
	var (
		mu   sync.Mutex
		ok   = map[string]bool{}
		next = make(chan int)
		wg   sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				deadline := time.Now().Add(time.Minute)
				for try := n; ; try++ {
					if post(client, l.procs[try%len(l.procs)].addr, l.bodies[n]) {
						mu.Lock()
						ok[eventID(n)] = true
						mu.Unlock()
						l.answered.Add(1)
						break
					}
					l.refused.Add(1)
					if time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	for n := range l.bodies {
		next <- n
	}
	close(next)
	wg.Wait()
	return ok
}

// waitAnswered waits until the load has had n envelopes answered 2xx.
func (l *load) waitAnswered(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for l.answered.Load() < n {
		if time.Now().After(deadline) {
			t.Errorf("only %d envelopes answered 2xx after a minute, want %d", l.answered.Load(), n)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliveredAll waits until hook got every answered event at least once, then
// until the queue under prefix is empty (so that no redelivery is still to
// come), and returns the deliveries of each event; it reports duplicates.
func deliveredAll(t *testing.T, hook *hooktest.Receiver, answered map[string]bool, redisAddr, prefix string) map[string]int {
	t.Helper()
	hook.WaitFor(t, len(answered), 2*time.Minute)
	waitDelivered(t, hook, answered, time.Minute)
	waitDrained(t, redisAddr, prefix)
	got := received(t, hook)
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	t.Logf("%d events answered 2xx, %d deliveries, %d duplicates", len(answered), hook.Count(), dups)
	return got
}

// waitDrained waits until the queue on Redis under prefix holds no job ready,
// delayed or leased.
func waitDrained(t *testing.T, addr, prefix string) {
	t.Helper()
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisstore.Options{Addr: addr, Prefix: prefix, Limits: store.Limits{History: 1, DeadLetters: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := s.Depth(ctx, time.Now())
		if err == nil && d.Ready+d.Delayed+d.Leased == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue is not empty a minute later: %+v, error %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three replicas on one Redis share the work: every event posted to any of
// them is delivered, and, without faults, exactly once.
func TestRedisReplicasDeliverEachEventOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as processes")
	}
	const events = 5000
	addr, prefix := redistest.Shared(t)
	hook := hooktest.New(t)
	l := &load{procs: redisReplicas(t, 3, addr, prefix, "warn", hook), bodies: pushBodies(t, events)}
	answered := l.run(t)
	if len(answered) != events || l.refused.Load() != 0 {
		t.Fatalf("%d of %d envelopes answered 2xx, %d refusals; want every one at first try", len(answered), events, l.refused.Load())
	}
	got := deliveredAll(t, hook, answered, addr, prefix)
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times, want once", id, n)
		}
	}
	if n := hook.Count(); n != events {
		t.Errorf("got %d deliveries, want %d", n, events)
	}
	// Most jobs went from the replica that received them straight to its
	// workers, not through the queue.
	handed := 0.0
	for _, p := range l.procs {
		handed += scrape(t, p.addr)["regwebhook_handoffs_total"]
	}
	if handed < events/2 || handed > events {
		t.Errorf("%v of %d jobs handed off, want most and no more than all", handed, events)
	}
	t.Logf("%v of %d jobs handed off", handed, events)
}

// A replica killed with SIGKILL mid-load loses nothing: the others take the
// envelopes it no longer answers, and deliver its leased jobs once their
// leases run out.
func TestRedisReplicaKilledLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as processes")
	}
	const events = 5000
	addr, prefix := redistest.Shared(t)
	// A little delay, so that the killed replica has deliveries in flight.
	hook := hooktest.New(t, hooktest.Delay(5*time.Millisecond))
	procs := redisReplicas(t, 3, addr, prefix, "info", hook)
	l := &load{procs: procs, bodies: pushBodies(t, events)}
	done := make(chan map[string]bool)
	go func() { done <- l.run(t) }()
	l.waitAnswered(t, events/2)
	// Mid-delivery, as far as the test can tell: some request is in flight.
	for deadline := time.Now().Add(10 * time.Second); hook.InFlight() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	procs[1].signal(t, syscall.SIGKILL)
	answered := <-done
	if len(answered) != events {
		t.Fatalf("%d of %d envelopes answered 2xx by the replicas left", len(answered), events)
	}
	// The killed replica's leases come back once they run out, and are
	// delivered (again, if its requests had gone out).
	deliveredAll(t, hook, answered, addr, prefix)
	reclaimed := 0
	for _, p := range []*process{procs[0], procs[2]} {
		for _, m := range regexp.MustCompile(`reclaimed=(\d+)`).FindAllStringSubmatch(p.logs.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			reclaimed += n
		}
	}
	t.Logf("the replicas left reclaimed %d leases of the killed one; %d deliveries in all", reclaimed, hook.Count())
}

// Redis killed and restarted mid-load (appendonly yes, appendfsync always)
// loses no envelope that was answered 2xx; regwebhook resumes by itself.
func TestRedisRestartLosesNothingAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as processes")
	}
	const events = 2000
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	hook := hooktest.New(t)
	l := &load{procs: redisReplicas(t, 2, srv.Addr, "regwebhook:", "warn", hook), bodies: pushBodies(t, events)}
	done := make(chan map[string]bool)
	go func() { done <- l.run(t) }()
	l.waitAnswered(t, events/3)
	srv.Kill()
	refused := l.refused.Load()
	// Down until some envelopes posted meanwhile were refused.
	var answered map[string]bool
	for deadline := time.Now().Add(10 * time.Second); l.refused.Load() < refused+10; {
		if time.Now().After(deadline) {
			t.Fatalf("no envelope refused in 10s while Redis was down (%d answered)", l.answered.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Restart()
	answered = <-done
	if len(answered) != events {
		t.Fatalf("%d of %d envelopes answered 2xx after the restart", len(answered), events)
	}
	t.Logf("%d answers were refusals while Redis was down", l.refused.Load())
	deliveredAll(t, hook, answered, srv.Addr, "regwebhook:")
}

// Redis frozen with SIGSTOP hangs rather than refuses: the receiver answers
// 503 after its time-out and /readyz fails; after SIGCONT everything resumes
// without a restart of regwebhook.
func TestRedisFrozenThen503AndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as processes")
	}
	const events = 600
	srv := redistest.Start(t)
	hook := hooktest.New(t)
	procs := redisReplicas(t, 1, srv.Addr, "regwebhook:", "warn", hook)
	p := procs[0]
	bodies := pushBodies(t, events)
	client := &http.Client{Timeout: 20 * time.Second}
	answered := map[string]bool{}
	for n := range events / 2 {
		if !post(client, p.addr, bodies[n]) {
			t.Fatalf("envelope %d not answered 2xx before the freeze", n)
		}
		answered[eventID(n)] = true
	}

	srv.Freeze()
	status := func(method, path string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+p.addr+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s while Redis is frozen: %v (want an answer within the client's %v)", method, path, err, client.Timeout)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("POST", "/v1/notifications", bodies[events/2]); got != http.StatusServiceUnavailable {
		t.Errorf("POST an envelope while Redis is frozen: status %d, want 503", got)
	}
	if got := status("GET", "/readyz", nil); got != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while Redis is frozen: status %d, want 503", got)
	}

	srv.Thaw()
	p.waitOK(t, "/readyz")
	for n := events / 2; n < events; n++ {
		if !post(client, p.addr, bodies[n]) {
			t.Fatalf("envelope %d not answered 2xx after the thaw", n)
		}
		answered[eventID(n)] = true
	}
	deliveredAll(t, hook, answered, srv.Addr, "regwebhook:")
}

// TestRedisThroughput measures deliveries per second with one and with three
// replicas on the shared Redis; docs/benchmarks.md has the figures. It runs
// only on demand, without -race:
//
//	REGWEBHOOK_BENCH=1 go test -count=1 -run TestRedisThroughput -v ./cmd/regwebhook
//
// Each round measures, with a receiver that answers at once and with one
// that takes 20ms (where delivery.perwebhook, 16 here, bounds each process):
//   - end to end: events posted round-robin to the replicas, eight at a
//     time, until each was delivered;
//   - delivery alone: jobs already queued (committed straight into the store
//     while no replica ran), delivered by replicas started together, from
//     the first delivery to the last.
func TestRedisThroughput(t *testing.T) {
	if os.Getenv("REGWEBHOOK_BENCH") == "" {
		t.Skip("a measurement: REGWEBHOOK_BENCH=1 go test -count=1 -run TestRedisThroughput -v ./cmd/regwebhook")
	}
	const events = 5000
	bodies := pushBodies(t, events)
	for _, c := range []struct {
		receiver string
		delay    time.Duration
		replicas int
	}{
		{"instant", 0, 1}, {"instant", 0, 3}, {"20ms", 20 * time.Millisecond, 1}, {"20ms", 20 * time.Millisecond, 3},
	} {
		t.Run(fmt.Sprintf("receiver=%s/replicas=%d", c.receiver, c.replicas), func(t *testing.T) {
			replicas := c.replicas
			addr, prefix := redistest.Shared(t)
			hook := hooktest.New(t, hooktest.Delay(c.delay))
			procs := redisReplicas(t, replicas, addr, prefix, "warn", hook)
			l := &load{procs: procs, bodies: bodies}
			begin := time.Now()
			answered := l.run(t)
			posted := time.Since(begin)
			hook.WaitFor(t, len(answered), 5*time.Minute)
			total := time.Since(begin)
			t.Logf("end to end: %d envelopes answered in %v (%.0f/s), all delivered in %v (%.0f deliveries/s)",
				len(answered), posted.Round(time.Millisecond), float64(len(answered))/posted.Seconds(),
				total.Round(time.Millisecond), float64(events)/total.Seconds())

			for _, p := range procs {
				p.signal(t, syscall.SIGTERM)
			}
			for _, p := range procs {
				p.exitCode(t, 30*time.Second)
			}
			before := hook.Count()
			queueJobs(t, addr, prefix, events)
			procs = redisReplicas(t, replicas, addr, prefix, "warn", hook)
			reqs := hook.WaitFor(t, before+events, 5*time.Minute)[before:]
			first, last := reqs[0].Received, reqs[0].Received
			for _, r := range reqs {
				first, last = minTime(first, r.Received), maxTime(last, r.Received)
			}
			took := last.Sub(first)
			t.Logf("delivery alone: %d queued jobs delivered in %v (%.0f deliveries/s)",
				events, took.Round(time.Millisecond), float64(events)/took.Seconds())
		})
	}
}

// queueJobs commits n jobs for the replicas' webhook straight into the store,
// as n envelopes would have.
func queueJobs(t *testing.T, addr, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := redisstore.Open(ctx, redisstore.Options{Addr: addr, Prefix: prefix, Limits: store.Limits{History: 100, DeadLetters: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hooks, err := s.Webhooks(ctx)
	if err != nil || len(hooks) != 1 {
		t.Fatalf("webhooks: %d, error %v; want the replicas' one", len(hooks), err)
	}
	now := time.Now()
	payload := `{"id":"x","action":"push","target":{"repository":"team/app","tag":"v1"}}`
	for from := 0; from < n; from += 500 {
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for i := from; i < min(from+500, n); i++ {
				id := fmt.Sprint("queued-", i)
				j := store.Job{ID: id, WebhookID: hooks[0].ID, EventID: id, Action: "push", Payload: payload,
					ContentType: "application/json", Created: now, Due: now}
				if err := tx.Enqueue(ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// A Redis that may lose what regwebhook answered 2xx for (AOF off here) is
// reported at start: in the log, in /readyz and in /metrics; with
// store.redis.strict: true, serve refuses to start.
func TestRedisPersistenceWarnings(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as processes")
	}
	srv := redistest.Start(t, "--appendonly", "no")
	dir := t.TempDir()
	for _, strict := range []bool{false, true} {
		addr := freeAddr(t)
		cfg := filepath.Join(dir, fmt.Sprintf("strict-%v.yml", strict))
		writeFile(t, cfg, fmt.Sprintf("http: {addr: %q}\nstore: {driver: redis, redis: {addr: %q, strict: %v}}\n", addr, srv.Addr, strict))
		if strict {
			p := start(t, "", "serve", "--config", cfg)
			if code := p.exitCode(t, 20*time.Second); code != 1 {
				t.Errorf("strict: exit status %d, want 1; log:\n%s", code, p.logs)
			}
			if want := "store.redis.strict refuses it: redis at " + srv.Addr + " has AOF off"; !strings.Contains(p.logs.String(), want) {
				t.Errorf("strict: the log does not say %q:\n%s", want, p.logs)
			}
			continue
		}
		p := startServe(t, cfg, addr)
		p.waitLog(t, "has AOF off (appendonly no)")
		var ready struct {
			Status   string
			Warnings []string
		}
		getJSON(t, "http://"+addr+"/readyz", &ready)
		if ready.Status != "ok" || len(ready.Warnings) != 1 || !strings.Contains(ready.Warnings[0], "has AOF off") {
			t.Errorf("/readyz: got %+v, want status ok and the AOF warning", ready)
		}
		if metrics := getText(t, "http://"+addr+"/metrics"); !strings.Contains(metrics, "\nregwebhook_store_persistence_warnings 1\n") {
			t.Errorf("/metrics has no regwebhook_store_persistence_warnings 1")
		}
	}
}

// getJSON decodes the JSON that GET url answers.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

// A webhook made through the API of one replica is in force in another: the
// other answers for it, and delivers to it the events posted to it. The
// replicas check every 250ms (docs/redis.md); the test logs the delay it
// saw rather than failing on a slow machine.
func TestRedisWebhookMadeThroughOneReplicaReachesAll(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as processes")
	}
	addr, prefix := redistest.Shared(t)
	fromFile, made := hooktest.New(t), hooktest.New(t)
	procs := redisReplicas(t, 2, addr, prefix, "warn", fromFile)
	body := fmt.Sprintf(`{"name":"madeonone","uri":%q}`, made.URL()+"/made")
	resp, err := http.Post("http://"+procs[0].addr+"/api/v1/webhooks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create through replica 0: status %d, want 201", resp.StatusCode)
	}
	created := time.Now()
	for {
		resp, err := http.Get("http://" + procs[1].addr + "/api/v1/webhooks/madeonone")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Since(created) > 10*time.Second {
			t.Fatalf("replica 1 answers %d for the webhook made through replica 0 10s before", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("replica 1 had the webhook %v after replica 0 made it", time.Since(created).Round(time.Millisecond))
	if !post(http.DefaultClient, procs[1].addr, pushBodies(t, 1)[0]) {
		t.Fatal("envelope not answered 2xx")
	}
	var got struct{ ID string }
	made.WaitFor(t, 1, 30*time.Second)[0].Decode(t, &got)
	if got.ID != eventID(0) {
		t.Errorf("the webhook made through replica 0 got event %q from replica 1, want %q", got.ID, eventID(0))
	}
}
