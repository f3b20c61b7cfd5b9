package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
)

// Cases of the inbox (docs/redis.md, "Inbox") that the conformance suite,
// one process at a time, does not reach: processes that die, close, or
// delete a webhook another one holds jobs of, and a webhook nobody asks
// for.

// inboxPair opens two stores with an inbox on one prefix, as two
// processes would.
func inboxPair(t *testing.T) (a, b *redis.Store) {
	addr, prefix := redistest.Shared(t)
	o := redis.Options{Addr: addr, Prefix: prefix, Inbox: true}
	return open(t, o), open(t, o)
}

// commitEnvelopes commits n envelopes, each of one job per webhook, the
// way the receiver does: ids e<i>-<webhook>.
func commitEnvelopes(t *testing.T, s *redis.Store, n int, now time.Time, webhooks ...string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for _, w := range webhooks {
				id := fmt.Sprintf("e%d-%s", i, w)
				j := store.Job{ID: id, WebhookID: w, EventID: fmt.Sprint("e", i), Action: "push",
					Payload: `{"id":"` + id + `"}`, ContentType: "application/json", Created: now, Due: now}
				if err := tx.Enqueue(ctx, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ingest envelope %d: %v", i, err)
		}
	}
}

func leaseAll(t *testing.T, s *redis.Store, now time.Time, webhooks ...string) []store.Lease {
	t.Helper()
	want := map[string]int{}
	for _, w := range webhooks {
		want[w] = 100
	}
	res, err := s.Lease(context.Background(), store.LeaseRequest{Now: now, For: time.Minute, Want: want})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	return res.Leases
}

func ids(leases []store.Lease) []string {
	var out []string
	for _, l := range leases {
		out = append(out, l.ID)
	}
	sort.Strings(out)
	return out
}

func wantDepth(t *testing.T, s *redis.Store, now time.Time, want store.Depth) {
	t.Helper()
	got, err := s.Depth(context.Background(), now)
	if err != nil {
		t.Fatalf("depth: %v", err)
	}
	if got != want {
		t.Errorf("depth: got %+v, want %+v", got, want)
	}
}

func ack(s *redis.Store, l store.Lease) error {
	return s.Ack(context.Background(), l, history.Entry{ID: l.ID, WebhookID: l.WebhookID, EventID: l.EventID, Action: l.Action, Attempt: l.Attempts})
}

func TestInboxJobsOfADeadProcessComeBackButThoseItAcked(t *testing.T) {
	ctx := context.Background()
	a, b := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 3, now, "w1", "w2")
	held := leaseAll(t, a, now, "w1", "w2")
	if len(held) != 6 {
		t.Fatalf("process a leased %d jobs, want 6", len(held))
	}
	for _, l := range held[:2] {
		if err := ack(a, l); err != nil {
			t.Fatalf("ack %s: %v", l.ID, err)
		}
	}
	// a dies here, holding four: b takes them back once a's leases ran out,
	// and not before.
	if m, err := b.Maintain(ctx, now.Add(30*time.Second), 0); err != nil || m.Reclaimed != 0 {
		t.Fatalf("maintain while a's leases run: %+v, %v; want nothing reclaimed", m, err)
	}
	later := now.Add(2 * time.Minute)
	m, err := b.Maintain(ctx, later, 0)
	if err != nil || m.Reclaimed != 4 {
		t.Fatalf("maintain after a's leases ran out: %+v, %v; want 4 reclaimed", m, err)
	}
	wantDepth(t, b, later, store.Depth{Ready: 4})
	got := leaseAll(t, b, later, "w1", "w2")
	if want := ids(held[2:]); fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("b leased %v, want a's unacked %v", ids(got), want)
	}
	// a's late ack changes nothing: b holds the job now.
	if err := ack(a, held[2]); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("a's ack after b took its jobs: got %v, want ErrLeaseLost", err)
	}
	h, err := b.History(ctx, held[2].WebhookID, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h {
		if e.ID == held[2].ID {
			t.Errorf("a's lost ack left an entry in the history: %+v", e)
		}
	}
	for _, l := range got {
		if err := ack(b, l); err != nil {
			t.Errorf("b's ack of %s: %v", l.ID, err)
		}
	}
	wantDepth(t, b, later, store.Depth{})
}

func TestInboxProcessThatClosesGivesItsJobsBack(t *testing.T) {
	a, b := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 2, now, "w1", "w2")
	first := leaseAll(t, a, now, "w1") // a takes both entries, leases w1's
	if len(first) != 2 {
		t.Fatalf("a leased %d jobs of w1, want 2", len(first))
	}
	if err := ack(a, first[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Its buffered jobs (w2's) and the one it leased and never acked.
	got := leaseAll(t, b, now, "w1", "w2")
	want := []string{first[1].ID, "e0-w2", "e1-w2"}
	sort.Strings(want)
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("b leased %v after a closed, want %v", ids(got), want)
	}
}

func TestInboxJobsOfAWebhookNobodyAsksForGoToItsQueue(t *testing.T) {
	ctx := context.Background()
	a, b := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 3, now, "fast", "slow")
	if got := leaseAll(t, a, now, "fast"); len(got) != 3 {
		t.Fatalf("a leased %d jobs of fast, want 3", len(got))
	}
	// slow's jobs wait in a's buffer; once they waited long enough, a's
	// Maintain moves them to slow's queue, where any process finds them.
	if _, err := a.Maintain(ctx, now.Add(time.Minute/2), 0); err != nil {
		t.Fatal(err)
	}
	got := leaseAll(t, b, now.Add(time.Minute/2), "slow")
	if want := []string{"e0-slow", "e1-slow", "e2-slow"}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("b leased %v of slow, want %v", ids(got), want)
	}
	for _, l := range got {
		if l.Attempts != 1 {
			t.Errorf("job %s leased with %d attempts, want 1: waiting is no attempt", l.ID, l.Attempts)
		}
	}
}

// createWebhook creates a webhook of the API whose id and name are id.
func createWebhook(t *testing.T, s *redis.Store, id string) {
	t.Helper()
	w := &rule.Webhook{ID: id, Name: id, URI: "http://127.0.0.1/", Status: rule.Enabled, Format: rule.ACR, Source: rule.FromAPI}
	if err := s.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
}

func TestInboxDropsTheJobsOfAWebhookAnotherProcessDeleted(t *testing.T) {
	ctx := context.Background()
	a, b := inboxPair(t)
	now := time.Now()
	createWebhook(t, b, "gone")
	commitEnvelopes(t, a, 2, now, "gone", "kept")
	if got := leaseAll(t, a, now, "kept"); len(got) != 2 { // a holds gone's two in its buffer
		t.Fatalf("a leased %d jobs of kept, want 2", len(got))
	}
	commitEnvelopes(t, a, 1, now.Add(time.Second), "gone") // and one more in the inbox
	if err := b.DeleteWebhook(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Maintain(ctx, now, 0); err != nil { // a learns of it
		t.Fatal(err)
	}
	if got := leaseAll(t, a, now.Add(time.Second), "gone"); len(got) != 0 {
		t.Errorf("a leased %v of the deleted webhook, want none", ids(got))
	}
	wantDepth(t, b, now.Add(time.Second), store.Depth{Leased: 2})
}

func TestInboxBuriesEntriesOlderThanTheAgeLimit(t *testing.T) {
	ctx := context.Background()
	a, _ := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 2, now, "w")
	m, err := a.Maintain(ctx, now.Add(2*time.Hour), time.Hour)
	if err != nil || m.Expired != 2 {
		t.Fatalf("maintain past the age limit: %+v, %v; want 2 expired", m, err)
	}
	dead, err := a.DeadLetters(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || dead[0].Error != store.ExpiredError(time.Hour) {
		t.Errorf("dead letters: %+v, want the 2 jobs, expired", dead)
	}
	wantDepth(t, a, now.Add(2*time.Hour), store.Depth{Dead: 2})
}

// Every job committed through the inbox is leased once across processes
// that lease at once.
func TestInboxProcessesLeaseEachJobOnce(t *testing.T) {
	a, b := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 100, now, "w0", "w1", "w2")
	seen := map[string]int{}
	for round := 0; ; round++ {
		la := leaseAll(t, a, now, "w0", "w1", "w2")
		lb := leaseAll(t, b, now, "w0", "w1", "w2")
		if len(la)+len(lb) == 0 {
			break
		}
		for _, l := range append(la, lb...) {
			seen[l.ID]++
		}
	}
	if len(seen) != 300 {
		t.Errorf("%d jobs leased, want 300", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s leased %d times", id, n)
		}
	}
}

// A lease the buffer serves later, without asking Redis for entries, still
// holds its process's jobs until it runs out.
func TestInboxLeaseFromTheBufferHoldsUntilItsEnd(t *testing.T) {
	ctx := context.Background()
	a, b := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 2, now, "w1", "w2")
	if got := leaseAll(t, a, now, "w1"); len(got) != 2 { // a takes both entries
		t.Fatalf("a leased %d jobs of w1, want 2", len(got))
	}
	later := now.Add(50 * time.Second)
	if got := leaseAll(t, a, later, "w2"); len(got) != 2 { // from its buffer, until later+1m
		t.Fatalf("a leased %d jobs of w2 from its buffer, want 2", len(got))
	}
	if _, err := a.Depth(ctx, later); err != nil { // sends what the buffer's lease changed
		t.Fatal(err)
	}
	// a dies. Its first leases ran out a minute after now, its last not
	// before later plus a minute: nothing comes back in between.
	if m, err := b.Maintain(ctx, now.Add(90*time.Second), 0); err != nil || m.Reclaimed != 0 {
		t.Fatalf("maintain while a's last leases run: %+v, %v; want nothing reclaimed", m, err)
	}
	if m, err := b.Maintain(ctx, later.Add(2*time.Minute), 0); err != nil || m.Reclaimed != 4 {
		t.Errorf("maintain after they ran out: %+v, %v; want 4 reclaimed", m, err)
	}
}

// fillBuffer commits redis.InboxCap jobs of webhook fill by s, more than
// it buffers at commit: s's next commits go to the inbox.
func fillBuffer(t *testing.T, s *redis.Store, now time.Time) {
	t.Helper()
	commitEnvelopes(t, s, redis.InboxCap, now, "fill")
}

func TestInboxCountsTheJobsOfADeletedWebhookOutOnce(t *testing.T) {
	ctx := context.Background()
	a, b := inboxPair(t)
	now := time.Now()
	createWebhook(t, b, "gone")
	fillBuffer(t, a, now)
	commitEnvelopes(t, a, 3, now, "gone", "kept") // in the inbox
	wantDepth(t, b, now, store.Depth{Ready: redis.InboxCap + 6})
	if err := b.DeleteWebhook(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	wantDepth(t, b, now, store.Depth{Ready: redis.InboxCap + 3}) // at once, though no process took them yet
	if _, err := a.Maintain(ctx, now, 0); err != nil {
		t.Fatal(err)
	}
	// a takes the entries, fill's and these, and drops gone's jobs.
	leases := leaseAll(t, a, now, "kept")
	if got, want := ids(leases), []string{"e0-kept", "e1-kept", "e2-kept"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a leased %v, want %v", got, want)
	}
	wantDepth(t, a, now, store.Depth{Ready: redis.InboxCap, Leased: 3}) // a's Depth sends what its buffer's leases moved
	for _, l := range leases {
		if err := ack(a, l); err != nil {
			t.Fatal(err)
		}
	}
	wantDepth(t, a, now, store.Depth{Ready: redis.InboxCap})
	// What the inbox counts next is not skewed by what was counted out.
	later := now.Add(time.Second)
	commitEnvelopes(t, b, 2, later, "kept")
	wantDepth(t, b, later, store.Depth{Ready: redis.InboxCap + 2})
	if got := leaseAll(t, b, later, "kept"); len(got) != 2 {
		t.Fatalf("b leased %d jobs, want 2", len(got))
	}
	wantDepth(t, b, later, store.Depth{Ready: redis.InboxCap, Leased: 2})
}

func TestInboxCommitsToItsProcessBufferUnlessTheInboxHoldsEntries(t *testing.T) {
	a, b := inboxPair(t)
	now := time.Now()
	commitEnvelopes(t, a, 1, now, "w") // into a's buffer: b cannot lease it
	if got := leaseAll(t, b, now, "w"); len(got) != 0 {
		t.Errorf("b leased %v of a's buffer, want none", ids(got))
	}
	if got := leaseAll(t, a, now, "w"); fmt.Sprint(ids(got)) != "[e0-w]" {
		t.Errorf("a leased %v, want [e0-w]", ids(got))
	}
	fillBuffer(t, a, now)
	commitEnvelopes(t, a, 1, now, "x") // a's buffer is full: into the inbox
	// b's buffer has room, but the inbox holds an older entry: b's commit
	// goes behind it, where a takes it too.
	later := now.Add(time.Millisecond)
	commitEnvelopes(t, b, 1, later, "y")
	if got := leaseAll(t, a, later, "x", "y"); fmt.Sprint(ids(got)) != "[e0-x e0-y]" {
		t.Errorf("a leased %v, want [e0-x e0-y]", ids(got))
	}
}

// eventPayload is the payload every job of envelope ev gets in
// commitShared: one format for all its webhooks.
func eventPayload(ev string) string {
	return `{"id":"` + ev + `","pad":"` + strings.Repeat("x", 600) + `"}`
}

// commitShared commits n envelopes, events s<i>, each of one job per
// webhook with the event's one payload; with handed, its jobs are leased
// to s for a minute from now (handed off at commit) rather than queued.
func commitShared(t *testing.T, s *redis.Store, n int, now time.Time, handed bool, webhooks ...string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		ev := fmt.Sprint("s", i)
		err := s.Ingest(ctx, func(tx store.Tx) error {
			for _, w := range webhooks {
				j := store.Job{ID: ev + "-" + w, WebhookID: w, EventID: ev, Action: "push",
					Payload: eventPayload(ev), ContentType: "application/json", Created: now, Due: now}
				var err error
				if handed {
					err = tx.(store.HandoffTx).EnqueueLeased(ctx, j, now.Add(time.Minute))
				} else {
					err = tx.Enqueue(ctx, j)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ingest envelope %s: %v", ev, err)
		}
	}
}

// wantPayloads checks that who leased want jobs, each with its event's
// payload.
func wantPayloads(t *testing.T, who string, leases []store.Lease, want int) {
	t.Helper()
	if len(leases) != want {
		t.Errorf("%s: leased %d jobs, want %d", who, len(leases), want)
	}
	for _, l := range leases {
		if l.Payload != eventPayload(l.EventID) {
			t.Errorf("%s: job %s has payload %.40q…, want its event's", who, l.ID, l.Payload)
		}
	}
}

// The webhooks of an event in one format have one payload, which an entry
// holds once: each job gets it back wherever the entry goes, whole or in
// part (taken, reclaimed after some of its jobs were acked, handed off at
// commit and reclaimed), and when a job leaves the entry for its webhook's
// queue.
func TestInboxJobsOfOneEventShareTheirPayload(t *testing.T) {
	ctx := context.Background()
	a, b := inboxPair(t)
	now := time.Now()
	commitShared(t, a, 3, now, false, "w1", "w2", "w3")
	first := leaseAll(t, a, now, "w1", "w2", "w3")
	wantPayloads(t, "a", first, 9)
	for _, l := range first[:4] {
		if err := ack(a, l); err != nil {
			t.Fatalf("ack %s: %v", l.ID, err)
		}
	}
	// a dies holding five jobs of three entries, some in part: b puts
	// them back on the inbox once their leases ran out, and leases them.
	later := now.Add(2 * time.Minute)
	if m, err := b.Maintain(ctx, later, 0); err != nil || m.Reclaimed != 5 {
		t.Fatalf("maintain after a's leases ran out: %+v, %v; want 5 reclaimed", m, err)
	}
	wantPayloads(t, "b, reclaimed", leaseAll(t, b, later, "w1", "w2", "w3"), 5)

	// Handed off at commit, then reclaimed.
	c, d := inboxPair(t)
	commitShared(t, c, 2, now, true, "w1", "w2")
	if m, err := d.Maintain(ctx, later, 0); err != nil || m.Reclaimed != 4 {
		t.Fatalf("maintain after c's handed leases ran out: %+v, %v; want 4 reclaimed", m, err)
	}
	wantPayloads(t, "d, handed and reclaimed", leaseAll(t, d, later, "w1", "w2"), 4)

	// Leased from the buffer, its lease run out: the job goes to its
	// webhook's queue, its string written whole.
	e, _ := inboxPair(t)
	commitShared(t, e, 2, now, false, "w1", "w2")
	wantPayloads(t, "e", leaseAll(t, e, now, "w1", "w2"), 4)
	if m, err := e.Maintain(ctx, later, 0); err != nil || m.Reclaimed != 4 {
		t.Fatalf("maintain after e's own leases ran out: %+v, %v; want 4 requeued", m, err)
	}
	again := leaseAll(t, e, later, "w1", "w2")
	wantPayloads(t, "e, from the queue", again, 4)
	for _, l := range again {
		if l.Attempts != 2 {
			t.Errorf("job %s from the queue: attempt %d, want 2 (the run-out lease's counted)", l.ID, l.Attempts)
		}
	}
}
