package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Benchmarks of the store operations on the hot path, shared by every store
// so that their figures compare: each store's bench_test.go runs Bench.

// BenchHooks is how many webhooks each benchmark envelope's event is
// enqueued for: the load command's default, 4 webhooks per event.
const BenchHooks = 4

// benchPayload is the size of a rendered acr payload of a pushed manifest.
const benchPayload = 600

// ServerCPU reads the CPU time a store's server has used so far (Redis's
// INFO cpu), for the benchmarks to report the server's share of an
// operation: on a machine the server shares, it is part of the cost.
type ServerCPU func() (time.Duration, error)

// Bench runs the store benchmarks on stores from open, one fresh store per
// benchmark:
//
//   - Ingest: what one envelope with one pushed manifest commits: the
//     dedupe check and mark, the index change, and BenchHooks jobs; serial
//     (the registry's way) and from 16 goroutines at once;
//   - Lease: leasing due jobs of one webhook, 1, 16, and from 1 to 8 a call
//     (a count that changes, as the dispatcher's does), per job;
//   - Ack: acknowledging one delivered job with its history entry, serial
//     and from 16 goroutines at once (the workers do so concurrently).
//
// With cpu, each also reports the server's CPU time per operation, as
// server-µs/op, over the timed part only.
func Bench(b *testing.B, open func(b *testing.B) store.Store, cpu ServerCPU) {
	run := func(name string, f func(t *timer, s store.Store)) {
		b.Run(name, func(b *testing.B) {
			t := &timer{b: b, cpu: cpu}
			s := open(b)
			t.start()
			f(t, s)
			t.stop()
			if cpu != nil {
				b.ReportMetric(float64(t.server.Microseconds())/float64(b.N), "server-µs/op")
			}
		})
	}
	run("Ingest/serial", func(t *timer, s store.Store) { benchIngest(t, s, 1) })
	run("Ingest/parallel16", func(t *timer, s store.Store) { benchIngest(t, s, 16) })
	run("Lease/batch1", func(t *timer, s store.Store) { benchLease(t, s, 1) })
	run("Lease/batch16", func(t *timer, s store.Store) { benchLease(t, s, 16) })
	// As the dispatcher asks: a count that changes from call to call.
	run("Lease/batch1to8", func(t *timer, s store.Store) { benchLease(t, s, 1, 2, 3, 4, 5, 6, 7, 8) })
	run("Ack/serial", func(t *timer, s store.Store) { benchAck(t, s, 1) })
	run("Ack/parallel16", func(t *timer, s store.Store) { benchAck(t, s, 16) })
}

// timer stops and starts the benchmark's timer and, with cpu, sums the
// server's CPU time while it runs.
type timer struct {
	b       *testing.B
	cpu     ServerCPU
	running bool
	at      time.Duration // the server's CPU when the timer last started
	server  time.Duration
}

func (t *timer) read() time.Duration {
	if t.cpu == nil {
		return 0
	}
	d, err := t.cpu()
	if err != nil {
		t.b.Fatalf("read the server's CPU time: %v", err)
	}
	return d
}

// reset starts timing afresh: what ran before does not count.
func (t *timer) reset() {
	t.server = 0
	t.at = t.read()
	t.b.ResetTimer()
}

func (t *timer) start() {
	if !t.running {
		t.running = true
		t.at = t.read()
		t.b.StartTimer()
	}
}

func (t *timer) stop() {
	if t.running {
		t.b.StopTimer()
		t.running = false
		t.server += t.read() - t.at
	}
}

func benchJob(id, webhook string, now time.Time) store.Job {
	return store.Job{ID: id, WebhookID: webhook, EventID: "e-" + id, Action: "push", ContentType: "application/json",
		Payload: strings.Repeat("\x00", benchPayload), Created: now, Due: now}
}

// ingestOne commits one envelope of event ev.
func ingestOne(ctx context.Context, s store.Store, ev string, now time.Time) error {
	return s.Ingest(ctx, func(tx store.Tx) error {
		if seen, err := tx.Seen(ctx, ev); err != nil || seen {
			return err
		}
		if err := tx.PutManifest(ctx, "team/app", "sha256:"+ev, "application/vnd.oci.image.manifest.v1+json", ev); err != nil {
			return err
		}
		for w := range BenchHooks {
			if err := tx.Enqueue(ctx, benchJob(fmt.Sprint(ev, "-", w), fmt.Sprint("w", w), now)); err != nil {
				return err
			}
		}
		return tx.MarkSeen(ctx, ev, now.Add(24*time.Hour))
	})
}

func benchIngest(t *timer, s store.Store, parallelism int) {
	b := t.b
	ctx := context.Background()
	now := time.Now()
	var n atomic.Int64
	if parallelism == 1 {
		for range b.N {
			if err := ingestOne(ctx, s, fmt.Sprint("event", n.Add(1)), now); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ingestOne(ctx, s, fmt.Sprint("event", n.Add(1)), now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fill queues n jobs of webhook w, outside the timer.
func fill(b *testing.B, s store.Store, w string, n int, now time.Time) {
	b.Helper()
	ctx := context.Background()
	const batch = 1000
	for done := 0; done < n; {
		k := min(batch, n-done)
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for i := range k {
				if err := tx.Enqueue(ctx, benchJob(fmt.Sprint(w, "-job", done+i), w, now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += k
	}
}

// benchLease times leasing jobs, batches[i] on the i-th call (cycling);
// one op is one job leased. Every 64 jobs leased are acked, untimed: the
// dispatcher holds no more leases than it has workers, and a store may
// spend on the leases it holds.
func benchLease(t *timer, s store.Store, batches ...int) {
	b := t.b
	ctx := context.Background()
	now := time.Now()
	fill(b, s, "w", b.N+slices.Max(batches), now)
	var held []store.Lease
	t.reset()
	for leased, call := 0, 0; leased < b.N; call++ {
		batch := batches[call%len(batches)]
		res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Hour, Want: map[string]int{"w": batch}})
		if err != nil || len(res.Leases) != batch {
			b.Fatalf("lease: %d jobs, error %v", len(res.Leases), err)
		}
		leased += batch
		if held = append(held, res.Leases...); len(held) >= 64 {
			t.stop()
			errs := make(chan error, len(held))
			for _, l := range held { // at once, as workers ack
				go func() {
					errs <- s.Ack(ctx, l, history.Entry{ID: l.ID, WebhookID: l.WebhookID, EventID: l.EventID, Action: l.Action, Attempt: 1})
				}()
			}
			for range held {
				if err := <-errs; err != nil {
					b.Fatalf("ack: %v", err)
				}
			}
			held = held[:0]
			t.start()
		}
	}
}

// benchAck times acknowledging leased jobs, each with a history entry the
// size a delivery's is.
func benchAck(t *timer, s store.Store, parallelism int) {
	b := t.b
	ctx := context.Background()
	now := time.Now()
	fill(b, s, "w", b.N, now)
	var leases []store.Lease
	for len(leases) < b.N {
		res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Hour, Want: map[string]int{"w": 1000}})
		if err != nil || len(res.Leases) == 0 {
			b.Fatalf("lease: %d jobs, error %v", len(res.Leases), err)
		}
		leases = append(leases, res.Leases...)
	}
	entry := func(l store.Lease) history.Entry {
		return history.Entry{ID: l.ID, WebhookID: l.WebhookID, EventID: l.EventID, Action: l.Action, Attempt: 1, Timestamp: now,
			Request:  history.Request{Method: "POST", RequestURI: "http://127.0.0.1/…", Content: l.Payload},
			Response: &history.Response{StatusCode: 200, ReasonPhrase: "OK"}}
	}
	t.reset()
	var next atomic.Int64
	ack := func() error {
		l := leases[next.Add(1)-1]
		return s.Ack(ctx, l, entry(l))
	}
	if parallelism == 1 {
		for range b.N {
			if err := ack(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ack(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
