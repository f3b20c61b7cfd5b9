package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		addr, prefix := redistest.Shared(t)
		return open(t, redis.Options{Addr: addr, Prefix: prefix})
	})
}

// TestConformanceInbox runs the suite on the store with its inbox
// (docs/redis.md, "Inbox").
func TestConformanceInbox(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		addr, prefix := redistest.Shared(t)
		return open(t, redis.Options{Addr: addr, Prefix: prefix, Inbox: true})
	})
}

// open opens a store with the suite's limits and closes it when the test
// ends.
func open(t testing.TB, o redis.Options) *redis.Store {
	t.Helper()
	o.Limits = storetest.Limits()
	s, err := redis.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openShared opens a store on the shared Redis under a new prefix.
func openShared(t testing.TB) (*redis.Store, redis.Options) {
	t.Helper()
	addr, prefix := redistest.Shared(t)
	o := redis.Options{Addr: addr, Prefix: prefix}
	return open(t, o), o
}

func TestKeyPrefix(t *testing.T) {
	for _, c := range []struct {
		prefix, want, wantErr string
	}{
		{"regwebhook:", "{regwebhook}:", ""},
		{"team1:regwebhook:", "{team1:regwebhook}:", ""},
		{"rw", "{rw}:", ""},
		{"{rw}:", "{rw}:", ""},
		{"app:{rw}:", "app:{rw}:", ""},
		{"", "", "the key prefix is empty"},
		{"a{}:", "", "has a { without a closing }"},
		{"a{b:", "", "has a { without a closing }"},
	} {
		got, err := redis.KeyPrefix(c.prefix)
		if got != c.want || (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("KeyPrefix(%q): got %q, %v; want %q, error with %q", c.prefix, got, err, c.want, c.wantErr)
		}
	}
}

// After every kind of state is written, every key the store made carries the
// prefix's hash tag, so all share one slot.
func TestEveryKeyHasTheHashTag(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	now := time.Now()
	w := &rule.Webhook{ID: "w", Name: "webhook1", URI: "http://127.0.0.1/", Status: rule.Enabled, Format: rule.ACR, Source: rule.FromAPI}
	if err := s.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	err := s.Ingest(ctx, func(tx store.Tx) error {
		if err := tx.PutManifest(ctx, "team/app", "sha256:1", "m", "v1"); err != nil {
			return err
		}
		if err := tx.MarkSeen(ctx, "e1", now.Add(time.Hour)); err != nil {
			return err
		}
		for _, id := range []string{"a", "b"} {
			if err := tx.Enqueue(ctx, store.Job{ID: id, WebhookID: "w", Created: now, Due: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 2}})
	if err != nil || len(res.Leases) != 2 {
		t.Fatalf("lease: %d jobs, error %v", len(res.Leases), err)
	}
	if _, err := s.Fail(ctx, res.Leases[0], store.Failure{Now: now, MaxAttempts: 1, Entry: history.Entry{ID: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Announce(ctx, "hash", now); err != nil {
		t.Fatal(err)
	}
	tag, _ := redis.KeyPrefix(o.Prefix)
	name := strings.TrimSuffix(o.Prefix, ":")
	keys := redistest.Keys(t, o.Addr, "*"+name+"*")
	if len(keys) < 10 {
		t.Errorf("found only %d keys: %q", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, tag) {
			t.Errorf("key %q does not start with %q", k, tag)
		}
	}
}

// Within one Ingest, reads see the transaction's own writes exactly as the
// embedded store's do: the same operations on both give the same answers.
func TestTxReadsItsOwnWrites(t *testing.T) {
	ctx := context.Background()
	type answer struct {
		Seen      map[string]bool
		Manifests map[string]string // "mediaType tags…", "" when unknown
		Tags      map[string]string // "digest mediaType", "" when unknown
	}
	// Before: committed by one Ingest. In the transaction: ops, then reads.
	before := func(tx store.Tx) error {
		for _, op := range []func() error{
			func() error { return tx.PutManifest(ctx, "app", "sha256:1", "m1", "v1") },
			func() error { return tx.PutManifest(ctx, "app", "sha256:1", "m1", "v2") },
			func() error { return tx.PutManifest(ctx, "app", "sha256:2", "m2", "latest") },
			func() error { return tx.MarkSeen(ctx, "old", time.Now().Add(time.Hour)) },
		} {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	}
	for _, c := range []struct {
		name string
		ops  func(tx store.Tx) error
	}{
		{"a tag moved in the transaction", func(tx store.Tx) error {
			return tx.PutManifest(ctx, "app", "sha256:2", "m2", "v1")
		}},
		{"a tag deleted, then the manifest", func(tx store.Tx) error {
			if err := tx.DeleteTag(ctx, "app", "v2"); err != nil {
				return err
			}
			return tx.DeleteManifest(ctx, "app", "sha256:1")
		}},
		{"a manifest deleted, then pushed again by digest", func(tx store.Tx) error {
			if err := tx.DeleteManifest(ctx, "app", "sha256:1"); err != nil {
				return err
			}
			return tx.PutManifest(ctx, "app", "sha256:1", "m3", "")
		}},
		{"a new manifest with a new tag, and a new mark", func(tx store.Tx) error {
			if err := tx.PutManifest(ctx, "app", "sha256:3", "m1", "new"); err != nil {
				return err
			}
			return tx.MarkSeen(ctx, "new", time.Now().Add(time.Hour))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ask := func(s store.Store) answer {
				t.Helper()
				if err := s.Ingest(ctx, before); err != nil {
					t.Fatal(err)
				}
				a := answer{Seen: map[string]bool{}, Manifests: map[string]string{}, Tags: map[string]string{}}
				err := s.Ingest(ctx, func(tx store.Tx) error {
					if err := c.ops(tx); err != nil {
						return err
					}
					for _, id := range []string{"old", "new", "never"} {
						seen, err := tx.Seen(ctx, id)
						if err != nil {
							return err
						}
						a.Seen[id] = seen
					}
					for _, d := range []string{"sha256:1", "sha256:2", "sha256:3"} {
						mt, tags, ok, err := tx.Manifest(ctx, "app", d)
						if err != nil {
							return err
						}
						if ok {
							a.Manifests[d] = strings.Join(append([]string{mt}, tags...), " ")
						}
					}
					for _, tag := range []string{"v1", "v2", "latest", "new"} {
						d, mt, ok, err := tx.Tag(ctx, "app", tag)
						if err != nil {
							return err
						}
						if ok {
							a.Tags[tag] = d + " " + mt
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			embedded, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), Limits: storetest.Limits()})
			if err != nil {
				t.Fatal(err)
			}
			defer embedded.Close()
			want := ask(embedded)
			s, _ := openShared(t)
			if diff := cmp.Diff(want, ask(s)); diff != "" {
				t.Errorf("answers (-embedded +redis):\n%s", diff)
			}
		})
	}
}

// Two stores on one Redis, as two processes would have, lease concurrently:
// every job is leased exactly once.
func TestProcessesLeaseEachJobOnce(t *testing.T) {
	ctx := context.Background()
	a, o := openShared(t)
	b := open(t, o)
	now := time.Now()
	const jobs = 300
	err := a.Ingest(ctx, func(tx store.Tx) error {
		for i := range jobs {
			w := fmt.Sprint("w", i%3)
			if err := tx.Enqueue(ctx, store.Job{ID: fmt.Sprint("job", i), WebhookID: w, Created: now, Due: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		leased = map[string]int{}
		wg     sync.WaitGroup
	)
	for i := range 6 {
		s := []*redis.Store{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w0": 4, "w1": 4, "w2": 4}})
				if err != nil {
					t.Errorf("lease: %v", err)
					return
				}
				if len(res.Leases) == 0 {
					return
				}
				mu.Lock()
				for _, l := range res.Leases {
					leased[l.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := range jobs {
		if n := leased[fmt.Sprint("job", i)]; n != 1 {
			t.Errorf("job%d leased %d times, want once", i, n)
		}
	}
}

func TestCloseIsSafeTwiceAndLaterCallsAreUnavailable(t *testing.T) {
	ctx := context.Background()
	s, _ := openShared(t)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	for name, err := range calls(ctx, s) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after close: got %v, want ErrUnavailable", name, err)
		}
	}
}

// calls makes one call of each kind and returns their errors by name.
func calls(ctx context.Context, s *redis.Store) map[string]error {
	now := time.Now()
	l := store.Lease{Job: store.Job{ID: "a", WebhookID: "w"}, Token: "t"}
	out := map[string]error{
		"ping":   s.Ping(ctx),
		"ingest": s.Ingest(ctx, func(tx store.Tx) error { _, err := tx.Seen(ctx, "e"); return err }),
		"commit": s.Ingest(ctx, func(tx store.Tx) error {
			return tx.Enqueue(ctx, store.Job{ID: "a", WebhookID: "w", Created: now, Due: now})
		}),
		"ack":         s.Ack(ctx, l, history.Entry{}),
		"release":     s.Release(ctx, l),
		"record":      s.Record(ctx, history.Entry{WebhookID: "w"}),
		"create":      s.CreateWebhook(ctx, &rule.Webhook{ID: "w", Name: "webhook1"}),
		"update":      s.UpdateWebhook(ctx, &rule.Webhook{ID: "w", Name: "webhook1"}),
		"delete":      s.DeleteWebhook(ctx, "w"),
		"webhooks":    second(s.Webhooks(ctx)),
		"history":     second(s.History(ctx, "w", 10)),
		"deadletters": second(s.DeadLetters(ctx, "w")),
		"depth":       second(s.Depth(ctx, now)),
		"maintain":    second(s.Maintain(ctx, now, time.Hour)),
		"version":     second(s.WebhooksVersion(ctx)),
		"announce":    second(s.Announce(ctx, "h", now)),
	}
	_, out["lease"] = s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
	_, out["fail"] = s.Fail(ctx, l, store.Failure{Now: now})
	return out
}

func second[T any](_ T, err error) error { return err }
