package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

func openBench(b *testing.B, sync string) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: b.TempDir(), Sync: sync, Limits: storetest.Limits()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchJob(id, webhook string, now time.Time) store.Job {
	return store.Job{ID: id, WebhookID: webhook, EventID: "e-" + id, Action: "push", ContentType: "application/json",
		Payload: strings.Repeat("\x00", 600), Created: now, Due: now}
}

// BenchmarkIngest commits what one pushed manifest does: the dedupe check
// and mark, the index change, and a job for each of two webhooks.
func BenchmarkIngest(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) {
			ctx := context.Background()
			s := openBench(b, sync)
			now := time.Now()
			i := 0
			for b.Loop() {
				i++
				ev := fmt.Sprint("event", i)
				err := s.Ingest(ctx, func(tx store.Tx) error {
					if seen, err := tx.Seen(ctx, ev); err != nil || seen {
						return err
					}
					if err := tx.PutManifest(ctx, "team/app", "sha256:"+ev, "application/vnd.oci.image.manifest.v1+json", "latest"); err != nil {
						return err
					}
					for _, w := range []string{"w1", "w2"} {
						if err := tx.Enqueue(ctx, benchJob(ev+w, w, now)); err != nil {
							return err
						}
					}
					return tx.MarkSeen(ctx, ev, now.Add(24*time.Hour))
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLeaseAck leases one job and acks it, as a worker does for each
// delivery that succeeds.
func BenchmarkLeaseAck(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, "full")
	now := time.Now()
	const batch = 1000
	queued := 0
	refill := func() {
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for range batch {
				queued++
				if err := tx.Enqueue(ctx, benchJob(fmt.Sprint("job", queued), "w", now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	left := 0
	for b.Loop() {
		if left == 0 {
			b.StopTimer()
			refill()
			left = batch
			b.StartTimer()
		}
		res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
		if err != nil || len(res.Leases) != 1 {
			b.Fatalf("lease: %d jobs, error %v", len(res.Leases), err)
		}
		l := res.Leases[0]
		if err := s.Ack(ctx, l, history.Entry{ID: l.ID, WebhookID: l.WebhookID, Attempt: 1, Timestamp: now}); err != nil {
			b.Fatal(err)
		}
		left--
	}
}

// BenchmarkStore runs the store benchmarks shared with the Redis store
// (storetest.Bench) in both sync modes.
func BenchmarkStore(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync, func(b *testing.B) {
			storetest.Bench(b, func(b *testing.B) store.Store { return openBench(b, sync) }, nil)
		})
	}
}
