package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
)

// deleteFixture makes webhook "w" with jobs queued jobs and webhook "x" with
// one, at now.
func deleteFixture(t *testing.T, jobs int, now time.Time) (*redis.Store, redis.Options) {
	t.Helper()
	ctx := context.Background()
	s, o := openShared(t)
	for _, id := range []string{"w", "x"} {
		if err := s.CreateWebhook(ctx, &rule.Webhook{ID: id, Name: id, URI: "http://127.0.0.1/" + id, Status: rule.Enabled}); err != nil {
			t.Fatal(err)
		}
	}
	for done := 0; done < jobs; done += 1000 {
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for i := done; i < min(done+1000, jobs); i++ {
				if err := tx.Enqueue(ctx, store.Job{ID: fmt.Sprint("w-", i), WebhookID: "w", Payload: "p", Created: now, Due: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Ingest(ctx, func(tx store.Tx) error {
		return tx.Enqueue(ctx, store.Job{ID: "x-0", WebhookID: "x", Payload: "p", Created: now, Due: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

// wantOnlyX checks that webhook w left nothing: no job or payload key, no
// index entry, no queue; x's job is untouched.
func wantOnlyX(t *testing.T, s *redis.Store, o redis.Options, now time.Time) {
	t.Helper()
	p, _ := redis.KeyPrefix(o.Prefix)
	for _, pattern := range []string{"j:w-*", "job:w-*", "pl:w-*", "q:w", "dq:w", "deleting"} {
		if keys := redistest.Keys(t, o.Addr, p+pattern); len(keys) > 0 {
			t.Errorf("keys %s left: %d", pattern, len(keys))
		}
	}
	d, err := s.Depth(context.Background(), now)
	if err != nil || d != (store.Depth{Ready: 1}) {
		t.Errorf("depth %+v, %v; want x's one job", d, err)
	}
}

// A webhook's queued jobs are removed 1,000 a script (a million in one
// script would hold Redis for seconds), all before DeleteWebhook returns.
func TestDeleteWebhookRemovesAQueueOfAnySize(t *testing.T) {
	now := time.Now()
	s, o := deleteFixture(t, 5500, now)
	if err := s.DeleteWebhook(context.Background(), "w"); err != nil {
		t.Fatal(err)
	}
	wantOnlyX(t, s, o, now)
}

// A delete that stopped after the webhook was gone (its process ended) is
// finished by Maintain, of any process; meanwhile the jobs are leased to no
// one, and those that grow too old become no dead letter of the webhook
// that is gone.
func TestMaintainFinishesADeleteThatStopped(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, o := deleteFixture(t, 2500, now)
	if err := s.DeleteWebhookOnly(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	hooks, err := s.Webhooks(ctx)
	if err != nil || len(hooks) != 1 || hooks[0].ID != "x" {
		t.Errorf("webhooks %v, %v; want x alone", hooks, err)
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 10}})
	if err != nil || len(res.Leases) != 0 {
		t.Errorf("lease of the deleted webhook's jobs: %d, %v; want none", len(res.Leases), err)
	}
	other := open(t, o) // another replica
	later := now.Add(time.Hour)
	for range 3 {
		// maxage a minute: every job of w is too old by then.
		if _, err := other.Maintain(ctx, later, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	dead, err := s.DeadLetters(ctx, "w")
	if err != nil || len(dead) != 0 {
		t.Errorf("dead letters of the deleted webhook: %d, %v; want none", len(dead), err)
	}
	p, _ := redis.KeyPrefix(o.Prefix)
	for _, pattern := range []string{"j:w-*", "job:w-*", "pl:w-*", "dq:w", "deleting"} {
		if keys := redistest.Keys(t, o.Addr, p+pattern); len(keys) > 0 {
			t.Errorf("keys %s left after Maintain: %d", pattern, len(keys))
		}
	}
}

// Deleting a webhook removes its leased jobs and no other's, whatever the
// length of the webhooks' ids: the script reads a leased job's webhook
// from the head of its string.
func TestDeleteWebhookRemovesItsLeasedJobsOnly(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	now := time.Now()
	long := strings.Repeat("l", 100)
	for _, id := range []string{long, "short"} {
		if err := s.CreateWebhook(ctx, &rule.Webhook{ID: id, Name: "hook" + id[:4], URI: "http://127.0.0.1/", Status: rule.Enabled}); err != nil {
			t.Fatal(err)
		}
		err := s.Ingest(ctx, func(tx store.Tx) error {
			return tx.Enqueue(ctx, store.Job{ID: "job-" + id, WebhookID: id, Payload: "p", Created: now, Due: now})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{long: 1, "short": 1}})
	if err != nil || len(res.Leases) != 2 {
		t.Fatalf("lease: %+v, %v; want both jobs", res.Leases, err)
	}
	for _, id := range []string{long, "short"} {
		if err := s.DeleteWebhook(ctx, id); err != nil {
			t.Fatal(err)
		}
		p, _ := redis.KeyPrefix(o.Prefix)
		if keys := redistest.Keys(t, o.Addr, p+"j:job-"+id); len(keys) > 0 {
			t.Errorf("webhook %.8s… deleted: its leased job's key is left", id)
		}
		if d, err := s.Depth(ctx, now); err != nil || id == long && d.Leased != 1 {
			t.Errorf("webhook %.8s… deleted: depth %+v, %v; want the other's job still leased", id, d, err)
		}
	}
}
