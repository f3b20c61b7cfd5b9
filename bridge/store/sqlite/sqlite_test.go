package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, t.TempDir())
	})
}

// open opens the store in dir with the suite's limits and closes it when the
// test ends.
func open(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, Limits: storetest.Limits()})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenRefusesADirectoryThisProcessHolds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := open(t, dir)
	_, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir, Limits: storetest.Limits()})
	if err == nil || !strings.Contains(err.Error(), dir+" is in use by another regwebhook process") {
		t.Fatalf("second open: got %v, want an error saying %s is in use", err, dir)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	open(t, dir) // the lock went with Close
}

func TestOpenRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		o    sqlite.Options
		want string
	}{
		{"sync", sqlite.Options{Sync: "off", Limits: storetest.Limits()}, `sync "off" is not full or normal`},
		{"limits", sqlite.Options{Limits: store.Limits{History: 10}}, "limits must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Dir = t.TempDir()
			s, err := sqlite.Open(context.Background(), c.o)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("open: got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestCloseIsSafeTwiceAndLaterCallsAreUnavailable(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	now := time.Now()
	l := store.Lease{Job: store.Job{ID: "a", WebhookID: "w"}, Token: "t"}
	for name, call := range map[string]func() error{
		"ping":   func() error { return s.Ping(ctx) },
		"ingest": func() error { return s.Ingest(ctx, func(store.Tx) error { return nil }) },
		"lease": func() error {
			_, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 1}})
			return err
		},
		"ack": func() error { return s.Ack(ctx, l, history.Entry{}) },
		"fail": func() error {
			_, err := s.Fail(ctx, l, store.Failure{Now: now})
			return err
		},
		"release": func() error { return s.Release(ctx, l) },
		"maintain": func() error {
			_, err := s.Maintain(ctx, now, time.Hour)
			return err
		},
		"depth": func() error {
			_, err := s.Depth(ctx, now)
			return err
		},
		"history": func() error {
			_, err := s.History(ctx, "w", 10)
			return err
		},
		"record":      func() error { return s.Record(ctx, history.Entry{WebhookID: "w"}) },
		"deadletters": func() error { _, err := s.DeadLetters(ctx, "w"); return err },
		"webhooks":    func() error { _, err := s.Webhooks(ctx); return err },
		"create":      func() error { return s.CreateWebhook(ctx, &rule.Webhook{ID: "w", Name: "webhook1"}) },
		"update":      func() error { return s.UpdateWebhook(ctx, &rule.Webhook{ID: "w", Name: "webhook1"}) },
		"delete":      func() error { return s.DeleteWebhook(ctx, "w") },
	} {
		if err := call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s after close: got %v, want ErrUnavailable", name, err)
		}
	}
}

// TestReopenKeepsEverything closes a store with one of each kind of state
// and checks that the same directory opened again shows it all, leased jobs
// back in the queue.
func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Millisecond)
	job := func(id string, due time.Duration) store.Job {
		return store.Job{ID: id, WebhookID: "w", EventID: "e-" + id, Action: "push", Payload: "p-" + id,
			ContentType: "application/json", Created: now, Due: now.Add(due)}
	}
	hook := &rule.Webhook{ID: "w", Name: "webhook1", URI: "http://example.com/", Headers: map[string]string{"A": "b"},
		Actions: []event.Action{event.Push}, Status: rule.Enabled, Format: rule.ACR, Source: rule.FromAPI}
	entry := history.Entry{ID: "acked", WebhookID: "w", EventID: "e-acked", Action: "push", Attempt: 1, Timestamp: now}
	fail := store.Failure{Now: now, MaxAttempts: 1, Error: "status 500", Entry: history.Entry{ID: "dead", WebhookID: "w", Attempt: 1, Timestamp: now}}

	s := open(t, dir)
	err := s.Ingest(ctx, func(tx store.Tx) error {
		for _, j := range []store.Job{job("acked", -3*time.Second), job("dead", -2*time.Second), job("leased", -time.Second), job("ready", 0), job("delayed", time.Hour)} {
			if err := tx.Enqueue(ctx, j); err != nil {
				return err
			}
		}
		if err := tx.MarkSeen(ctx, "e1", now.Add(time.Hour)); err != nil {
			return err
		}
		return tx.PutManifest(ctx, "app", "sha256:1", "m1", "v1")
	})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if err := s.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 3}})
	if err != nil || len(res.Leases) != 3 {
		t.Fatalf("lease: got %d jobs, error %v; want 3", len(res.Leases), err)
	}
	if err := s.Ack(ctx, res.Leases[0], entry); err != nil {
		t.Fatal(err)
	}
	if dead, err := s.Fail(ctx, res.Leases[1], fail); err != nil || !dead {
		t.Fatalf("fail: got dead %v, error %v", dead, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	dead := job("dead", -2*time.Second)
	dead.Attempts = 1
	want := durable{
		Depth:       store.Depth{Ready: 2, Delayed: 1, Dead: 1}, // "leased" is queued again
		Webhooks:    []*rule.Webhook{hook},
		History:     []history.Entry{fail.Entry, entry},
		DeadLetters: []store.DeadLetter{{Job: dead, Error: "status 500", Died: now}},
		Seen:        map[string]bool{"e1": true, "e2": false},
		Tag:         []string{"sha256:1", "m1"},
		Manifest:    []string{"m1", "v1"},
	}
	if diff := cmp.Diff(want, state(t, s, now), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
	res, err = s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 5}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range res.Leases {
		got = append(got, l.ID)
	}
	if diff := cmp.Diff([]string{"leased", "ready"}, got); diff != "" {
		t.Errorf("leased after reopen (-want +got):\n%s", diff)
	}
}

// durable is what a store holds that must survive a restart.
type durable struct {
	Depth       store.Depth
	Webhooks    []*rule.Webhook
	History     []history.Entry
	DeadLetters []store.DeadLetter
	Seen        map[string]bool
	Tag         []string
	Manifest    []string
}

func state(t *testing.T, s *sqlite.Store, now time.Time) durable {
	t.Helper()
	ctx := context.Background()
	var d durable
	var err error
	if d.Depth, err = s.Depth(ctx, now); err != nil {
		t.Fatal(err)
	}
	if d.Webhooks, err = s.Webhooks(ctx); err != nil {
		t.Fatal(err)
	}
	if d.History, err = s.History(ctx, "w", 100); err != nil {
		t.Fatal(err)
	}
	if d.DeadLetters, err = s.DeadLetters(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	err = s.Ingest(ctx, func(tx store.Tx) error {
		d.Seen = map[string]bool{}
		for _, id := range []string{"e1", "e2"} {
			if d.Seen[id], err = tx.Seen(ctx, id); err != nil {
				return err
			}
		}
		digest, mediaType, ok, err := tx.Tag(ctx, "app", "v1")
		if ok {
			d.Tag = []string{digest, mediaType}
		}
		if err != nil {
			return err
		}
		mediaType, tags, ok, err := tx.Manifest(ctx, "app", "sha256:1")
		if ok {
			d.Manifest = append([]string{mediaType}, tags...)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
