package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
)

// raw returns a client on the store's Redis and the store's key prefix, to
// write keys as an earlier version did.
func raw(t *testing.T, o redis.Options) (*goredis.Client, string) {
	t.Helper()
	p, err := redis.KeyPrefix(o.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: o.Addr})
	t.Cleanup(func() { c.Close() })
	return c, p
}

// ns and us are a time as scripts keep it in hashes and sorted sets.
func ns(t time.Time) string  { return strconv.FormatInt(t.UnixNano(), 10) }
func us(t time.Time) float64 { return float64(t.UnixMicro()) }

// TestJobsOfEarlierVersionsAreDelivered writes jobs the way earlier versions
// did: the payload in the job's hash (before pl:<id>), and a lease held in
// the hash (token, until, attempts counted when leased) rather than in
// leases. The store delivers the first, and reclaims the second once its
// lease ran out without counting its attempt twice.
func TestJobsOfEarlierVersionsAreDelivered(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	c, p := raw(t, o)
	now := time.Now().Truncate(time.Microsecond)
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
	if l.ID != "queued" || l.Payload != `{"id":"queued"}` || l.Attempts != 1 {
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
	if l := res.Leases[0]; l.ID != "leased" || l.Attempts != 2 || l.Payload != `{"id":"leased"}` {
		t.Errorf("leased %q, attempts %d, payload %q; want leased, 2 (the earlier lease's attempt counted once), its payload", l.ID, l.Attempts, l.Payload)
	}
	d, err := s.Depth(ctx, later)
	if err != nil || d != (store.Depth{Leased: 1}) {
		t.Errorf("depth: %+v, %v; want the one job leased", d, err)
	}
}

// TestJobsOfThePreviousVersionAreDelivered writes a job the way the version
// before jobs were strings did: its fields in a hash, job:<id>, its payload
// in pl:<id>. The store leases it, records a failed attempt in that hash,
// leases it again with both attempts counted, dead-letters it with its
// fields and payload, and leaves none of its keys behind.
func TestJobsOfThePreviousVersionAreDelivered(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	c, p := raw(t, o)
	now := time.Now().Truncate(time.Microsecond)
	err := c.HSet(ctx, p+"job:prev", "webhook", "w", "event", "e-prev", "action", "push", "type", "application/json",
		"created", ns(now), "redelivery", "0", "attempts", 0, "due", ns(now)).Err()
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, p+"pl:prev", `{"id":"prev"}`, 0)
	c.ZAdd(ctx, p+"q:w", goredis.Z{Score: us(now), Member: "prev"})
	c.ZAdd(ctx, p+"queued", goredis.Z{Score: us(now), Member: "prev"})
	c.ZAdd(ctx, p+"created", goredis.Z{Score: us(now), Member: "prev"})

	lease := func(at time.Time) store.Lease {
		t.Helper()
		res, err := s.Lease(ctx, store.LeaseRequest{Now: at, For: time.Minute, Want: map[string]int{"w": 5}})
		if err != nil || len(res.Leases) != 1 {
			t.Fatalf("lease at %v: %+v, %v; want the job", at, res.Leases, err)
		}
		return res.Leases[0]
	}
	l := lease(now)
	if l.ID != "prev" || l.EventID != "e-prev" || l.Payload != `{"id":"prev"}` || l.Attempts != 1 || !l.Created.Equal(now) {
		t.Fatalf("leased %+v; want prev, event e-prev, its payload from pl:prev, attempt 1, created %v", l, now)
	}
	retry := now.Add(time.Second)
	f := store.Failure{Now: now, Due: retry, MaxAttempts: 2, Error: "503", Entry: history.Entry{ID: l.ID, WebhookID: "w", Attempt: 1}}
	if dead, err := s.Fail(ctx, l, f); err != nil || dead {
		t.Fatalf("fail the first attempt: dead %v, %v; want queued again", dead, err)
	}
	if got := c.HGet(ctx, p+"job:prev", "attempts").Val(); got != "1" {
		t.Errorf("attempts in job:prev after a failure = %q, want 1", got)
	}
	l = lease(retry)
	if l.Attempts != 2 || !l.Due.Equal(retry) || l.Payload != `{"id":"prev"}` {
		t.Fatalf("leased again %+v; want attempt 2, due %v, its payload", l, retry)
	}
	f.Now, f.Entry.Attempt = retry, 2
	if dead, err := s.Fail(ctx, l, f); err != nil || !dead {
		t.Fatalf("fail the last attempt: dead %v, %v; want a dead letter", dead, err)
	}
	dl, err := s.DeadLetters(ctx, "w")
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters: %+v, %v; want the job", dl, err)
	}
	if d := dl[0]; d.ID != "prev" || d.EventID != "e-prev" || d.Attempts != 2 || d.Payload != `{"id":"prev"}` || d.Error != "503" {
		t.Errorf("dead letter %+v; want prev, e-prev, 2 attempts, its payload, error 503", d)
	}
	if n := c.Exists(ctx, p+"job:prev", p+"pl:prev", p+"j:prev").Val(); n != 0 {
		t.Errorf("%d of job:prev, pl:prev and j:prev left after the job died, want none", n)
	}
}

// A job's fields may hold any bytes (an event id is the registry's): the
// ones that look like the lengths and separators of the job's string come
// back as they went in, leased and handed off alike. A string cut short
// is an error that names the job.
func TestJobFieldsOfAnyBytes(t *testing.T) {
	ctx := context.Background()
	s, o := openShared(t)
	now := time.Now().Truncate(time.Microsecond)
	odd := store.Job{ID: "odd", WebhookID: "w:1", EventID: "3:ab:\n7:", Action: "", ContentType: "a:b",
		Created: now, Due: now, Redelivery: true, Attempts: 2, Payload: "12:{\"x\":1}"}
	handed := odd
	handed.ID, handed.WebhookID, handed.Payload = "handed", "w:2", ""
	var leases []store.Lease
	err := s.Ingest(ctx, func(tx store.Tx) error {
		if err := tx.Enqueue(ctx, odd); err != nil {
			return err
		}
		ho := tx.(store.HandoffTx)
		if err := ho.EnqueueLeased(ctx, handed, now.Add(time.Minute)); err != nil {
			return err
		}
		leases = ho.Handed()
		return nil
	})
	if err != nil || len(leases) != 1 {
		t.Fatalf("ingest: %v, %d handed; want 1", err, len(leases))
	}
	res, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w:1": 5, "w:2": 5}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease: %+v, %v; want the queued job only", res.Leases, err)
	}
	got := res.Leases[0].Job
	want := odd
	want.Attempts++
	if got.ID != want.ID || got.WebhookID != want.WebhookID || got.EventID != want.EventID || got.Action != want.Action ||
		got.ContentType != want.ContentType || !got.Created.Equal(want.Created) || !got.Due.Equal(want.Due) ||
		got.Redelivery != want.Redelivery || got.Attempts != want.Attempts || got.Payload != want.Payload {
		t.Errorf("leased %+v, want %+v", got, want)
	}
	// The handed job, once its lease ran out, is leased from its string.
	if _, err := s.Maintain(ctx, now.Add(2*time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	res, err = s.Lease(ctx, store.LeaseRequest{Now: now.Add(2 * time.Minute), For: time.Minute, Want: map[string]int{"w:2": 5}})
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("lease the handed job after its lease ran out: %+v, %v", res.Leases, err)
	}
	if h := res.Leases[0].Job; h.EventID != odd.EventID || h.Attempts != odd.Attempts+2 || len(h.Payload) != 0 {
		t.Errorf("handed job leased again %+v; want event %q, attempts %d (its lease that ran out counted), no payload", h, odd.EventID, odd.Attempts+2)
	}

	c, p := raw(t, o)
	c.Set(ctx, p+"j:cut", "36:w", 0)
	c.ZAdd(ctx, p+"q:w:3", goredis.Z{Score: float64(now.UnixMicro()), Member: "cut"})
	if _, err := s.Lease(ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: map[string]int{"w:3": 1}}); err == nil || !strings.Contains(err.Error(), `job "cut"`) {
		t.Errorf("lease of a job whose string is cut short: %v; want an error naming the job", err)
	}
}
