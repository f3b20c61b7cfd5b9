package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
)

// TestJobsOfEarlierVersionsAreDelivered writes jobs the way earlier versions
// did: the payload in the job's hash (before pl:<id>), and a lease held in
// the hash (token, until, attempts counted when leased) rather than in
// leases. The store delivers the first, and reclaims the second once its
// lease ran out without counting its attempt twice.
func TestJobsOfEarlierVersionsAreDelivered(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	p, err := redis.KeyPrefix(o.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: o.Addr})
	defer c.Close()
	now := time.Now().Truncate(time.Microsecond)
	ns := func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }
	us := func(t time.Time) float64 { return float64(t.UnixMicro()) }
	old := func(id, state, token string, attempts int) {
		t.Helper()
		err := c.HSet(ctx, p+"job:"+id, "webhook", "w", "event", "e-"+id, "action", "push", "type", "application/json",
			"created", ns(now), "redelivery", "0", "attempts", attempts, "due", ns(now), "payload", `{"id":"`+id+`"}`,
			"state", state, "token", token, "until", ns(now.Add(time.Minute))).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	// queued, payload in its hash
	old("queued", "queued", "", 0)
	c.ZAdd(ctx, p+"q:w", goredis.Z{Score: us(now), Member: "queued"})
	c.ZAdd(ctx, p+"queued", goredis.Z{Score: us(now), Member: "queued"})
	c.ZAdd(ctx, p+"created", goredis.Z{Score: us(now), Member: "queued"})
	// leased by an earlier version, its attempt counted in the hash
	old("leased", "leased", "oldtoken.1", 1)
	c.ZAdd(ctx, p+"leased", goredis.Z{Score: us(now.Add(time.Minute)), Member: "leased"})

	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w": 5}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease: %+v, %v; want the queued job", res.Leases, err)
	}
	l := res.Leases[0]
	if l.ID != "queued" || string(l.Payload) != `{"id":"queued"}` || l.Attempts != 1 {
		t.Errorf("leased %q, payload %q, attempts %d; want queued, its payload from its hash, 1", l.ID, l.Payload, l.Attempts)
	}
	if err := s.Ack(ctx, l, history.Entry{ID: l.ID, WebhookID: "w", Attempt: 1}); err != nil {
		t.Errorf("ack: %v", err)
	}

	later := now.Add(2 * time.Minute)
	m, err := s.Maintain(ctx, later, 24*time.Hour)
	if err != nil || m.Reclaimed != 1 {
		t.Fatalf("maintain: %+v, %v; want the earlier version's lease reclaimed", m, err)
	}
	res, err = s.Lease(ctx, store.LeaseRequest{Now: later, For: time.Minute, Want: map[string]int{"w": 5}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease after reclaim: %+v, %v; want the reclaimed job", res.Leases, err)
	}
	if l := res.Leases[0]; l.ID != "leased" || l.Attempts != 2 || string(l.Payload) != `{"id":"leased"}` {
		t.Errorf("leased %q, attempts %d, payload %q; want leased, 2 (the earlier lease's attempt counted once), its payload", l.ID, l.Attempts, l.Payload)
	}
	d, err := s.Depth(ctx, later)
	if err != nil || d != (store.Depth{Leased: 1}) {
		t.Errorf("depth: %+v, %v; want the one job leased", d, err)
	}
}
