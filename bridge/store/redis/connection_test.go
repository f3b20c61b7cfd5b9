package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

func TestPersistenceWarnings(t *testing.T) {
	aofOff := "has AOF off (appendonly no)"
	eviction := "has maxmemory-policy allkeys-lru, not noeviction"
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"AOF and noeviction", []string{"--appendonly", "yes"}, nil},
		{"AOF off", nil, []string{aofOff}},
		{"eviction", []string{"--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"}, []string{eviction}},
		{"both", []string{"--maxmemory-policy", "allkeys-lru"}, []string{aofOff, eviction}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := redistest.Start(t, c.args...)
			o := redis.Options{Addr: srv.Addr, Prefix: "rw:"}
			s := open(t, o)
			if diff := cmp.Diff(c.want, s.Warnings(), containing()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}

			o.Strict, o.Limits = true, storetest.Limits()
			strict, err := redis.Open(context.Background(), o)
			if c.want == nil {
				if err != nil {
					t.Errorf("strict open: %v", err)
				} else {
					strict.Close()
				}
				return
			}
			if err == nil {
				strict.Close()
				t.Fatalf("strict open succeeded, want it refused")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), "store.redis.strict refuses it") || !strings.Contains(err.Error(), w) {
					t.Errorf("strict open: got %v, want a refusal naming %q", err, w)
				}
			}
		})
	}
}

// containing compares lists of strings, a wanted string matching a got one
// that contains it.
func containing() cmp.Option {
	return cmp.Comparer(func(a, b string) bool { return strings.Contains(a, b) || strings.Contains(b, a) })
}

// A Redis that hangs (SIGSTOP) fails calls with ErrUnavailable after the
// time-outs, and once it resumes the same store works again. So does a Redis
// killed and restarted, which also keeps, with appendonly yes and appendfsync
// always, everything committed before.
func TestOutagesAreUnavailableAndPassByThemselves(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for time-outs")
	}
	ctx := context.Background()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := open(t, redis.Options{Addr: srv.Addr, Prefix: "rw:"})
	now := time.Now()
	enqueue := func(id string) error {
		return s.Ingest(ctx, func(tx store.Tx) error {
			if seen, err := tx.Seen(ctx, id); err != nil || seen {
				return err
			}
			if err := tx.Enqueue(ctx, store.Job{ID: id, WebhookID: "w", Created: now, Due: now}); err != nil {
				return err
			}
			return tx.MarkSeen(ctx, id, now.Add(time.Hour))
		})
	}
	if err := enqueue("before"); err != nil {
		t.Fatal(err)
	}

	srv.Freeze()
	// No deadline in ctx, as the receiver's: the read time-out ends it.
	if err := enqueue("frozen"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ingest while frozen: got %v, want ErrUnavailable", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	for name, err := range calls(short, s) {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s while frozen: got %v, want ErrUnavailable", name, err)
		}
	}
	cancel()
	srv.Thaw()
	waitPing(t, s)
	if err := enqueue("thawed"); err != nil {
		t.Errorf("ingest after thaw: %v", err)
	}

	srv.Kill()
	if err := enqueue("down"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ingest while down: got %v, want ErrUnavailable", err)
	}
	srv.Restart()
	waitPing(t, s)
	if err := enqueue("restarted"); err != nil {
		t.Errorf("ingest after restart: %v", err)
	}
	// The frozen ingest may have been carried out once Redis resumed: its
	// commit was sent before the time-out. Either way, nothing is lost or
	// doubled.
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 10}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range res.Leases {
		got[l.ID] = true
	}
	for _, id := range []string{"before", "thawed", "restarted"} {
		if !got[id] {
			t.Errorf("job %q is not in the queue after the restart; have %v", id, got)
		}
	}
	if len(got) != len(res.Leases) || got["down"] {
		t.Errorf("leased %d jobs %v: want each once, and not the one committed while Redis was down", len(res.Leases), got)
	}
}

// waitPing waits until s answers again.
func waitPing(t *testing.T, s *redis.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ping(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store does not answer again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTLS(t *testing.T) {
	ctx := context.Background()
	files := redistest.NewTLS(t)
	srv := redistest.StartTLS(t, files)
	for _, c := range []struct {
		name string
		o    redis.Options
	}{
		{"host:port with tls and cafile", redis.Options{Addr: srv.Addr, TLS: true, CAFile: files.CA}},
		{"rediss URL with cafile", redis.Options{Addr: "rediss://" + srv.Addr + "/0", CAFile: files.CA}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Prefix = "rw:"
			s := open(t, c.o)
			now := time.Now()
			j := store.Job{ID: "a", WebhookID: "w", Payload: "{}", Created: now, Due: now}
			if err := s.Ingest(ctx, func(tx store.Tx) error { return tx.Enqueue(ctx, j) }); err != nil {
				t.Fatal(err)
			}
			res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
			if err != nil || len(res.Leases) != 1 {
				t.Fatalf("lease: %d jobs, error %v", len(res.Leases), err)
			}
			if err := s.Ack(ctx, res.Leases[0], history.Entry{ID: "a", Attempt: 1}); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("a server the CA did not sign is refused", func(t *testing.T) {
		other := redistest.NewTLS(t)
		_, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, TLS: true, CAFile: other.CA, Prefix: "rw:", Limits: storetest.Limits()})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("open: got %v, want a certificate error", err)
		}
	})
	t.Run("plain TCP to a TLS port is unavailable", func(t *testing.T) {
		_, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Prefix: "rw:", Limits: storetest.Limits()})
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("open: got %v, want ErrUnavailable", err)
		}
	})
}

// Open loads the store's function library, and says why it cannot: a Redis
// without FUNCTION (before 7.0; here the command renamed away), a user
// whose ACL does not allow it.
func TestOpenWithoutFunctionsSaysWhy(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		user string
		want []string
	}{
		{"no FUNCTION command", []string{"--rename-command", "FUNCTION", ""}, "", []string{"unknown command", "FUNCTION needs Redis 7.0 or later"}},
		{"ACL without FUNCTION", []string{"--user", "app", "on", ">pw", "~*", "&*", "+@all", "-function"}, "app", []string{"NOPERM", "load the store's Redis functions"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := redistest.Start(t, c.args...)
			addr := srv.Addr
			if c.user != "" {
				addr = "redis://" + c.user + ":pw@" + srv.Addr
			}
			s, err := redis.Open(context.Background(), redis.Options{Addr: addr, Prefix: "rw:", Limits: storetest.Limits()})
			if err == nil {
				s.Close()
				t.Fatal("open succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("open: got %v, want it to say %q", err, w)
				}
			}
		})
	}
}
