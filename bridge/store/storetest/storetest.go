// Package storetest is the conformance suite of the store contract: every
// store (sqlite, redis) runs it, and passes it unchanged.
//
// Each case opens a fresh store, sets up the state before, does one
// operation, and compares the whole state after — depth, what Lease returns,
// dead letters, history — with cmp.Diff. Times are the real time.Now() (in
// milliseconds) plus offsets, so a store may rely on real time where it does
// (Redis expires dedupe keys by itself).
package storetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Limits returns the limits open must give each store the suite opens: the
// suite checks that they hold.
func Limits() store.Limits {
	return store.Limits{History: 3, DeadLetters: 2}
}

// Run runs the suite. open returns a new, empty store with Limits(); the
// suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"ingest", ingestCases},
		{"queue", queueCases},
		{"records", recordCases},
		{"index", indexCases},
		{"webhooks", webhookCases},
		{"redeliveries", redeliverCases},
		{"handoff", handoffCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.run(newFixture(t, open)) })
			}
		})
	}
}

// testCase is one case of the suite, run on a fresh store.
type testCase struct {
	name string
	run  func(f *fixture)
}

// fixture is a fresh store with helpers that fail the test on errors.
type fixture struct {
	t      *testing.T
	open   func(t *testing.T) store.Store
	ctx    context.Context
	s      store.Store
	base   time.Time       // the case's "now"; times are offsets from it
	tokens map[string]bool // every lease token handed out, to check each is new
}

func newFixture(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &fixture{
		t:      t,
		open:   open,
		ctx:    context.Background(),
		s:      s,
		base:   time.Now().UTC().Truncate(time.Millisecond),
		tokens: map[string]bool{},
	}
}

// fresh returns a fixture on a new store for a subtest.
func (f *fixture) fresh(t *testing.T) *fixture { return newFixture(t, f.open) }

// at returns the case's now plus d.
func (f *fixture) at(d time.Duration) time.Time { return f.base.Add(d) }

// job returns a job of webhook for a made-up event, made at created, due at due.
func (f *fixture) job(id, webhook string, created, due time.Duration) store.Job {
	return store.Job{
		ID:          id,
		WebhookID:   webhook,
		EventID:     "event-" + id,
		Action:      "push",
		Payload:     `{"id":"event-` + id + `"}`,
		ContentType: "application/json",
		Created:     f.at(created),
		Due:         f.at(due),
	}
}

// entry returns a history entry of an attempt at a job.
func (f *fixture) entry(j store.Job, attempt int, status int) history.Entry {
	e := history.Entry{
		ID:         j.ID,
		WebhookID:  j.WebhookID,
		EventID:    j.EventID,
		Action:     j.Action,
		Attempt:    attempt,
		Timestamp:  f.at(time.Duration(attempt) * time.Second),
		DurationMs: 12,
		Request: history.Request{
			Method:     "POST",
			RequestURI: "https://hooks.example.com/…",
			Headers:    history.MakeHeaders(map[string]string{"Authorization": history.Masked, "X-Regwebhook-Delivery": j.ID}),
			Content:    j.Payload,
		},
		Response: &history.Response{
			StatusCode:   status,
			ReasonPhrase: fmt.Sprint(status),
			Headers:      history.Headers{{Name: "Content-Type", Value: "text/plain"}},
			Content:      "answer",
		},
	}
	if status/100 != 2 {
		e.Error = fmt.Sprintf("status %d", status)
	}
	return e
}

// enqueue commits jobs in one Ingest.
func (f *fixture) enqueue(jobs ...store.Job) {
	f.t.Helper()
	err := f.s.Ingest(f.ctx, func(tx store.Tx) error {
		for _, j := range jobs {
			if err := tx.Enqueue(f.ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("enqueue: %v", err)
	}
}

// lease leases at now for a minute, and checks that every token is new. The
// leases are sorted by webhook, due and id.
func (f *fixture) lease(now time.Time, want map[string]int) store.LeaseResult {
	f.t.Helper()
	res, err := f.s.Lease(f.ctx, store.LeaseRequest{Now: now, For: time.Minute, Want: want})
	if err != nil {
		f.t.Fatalf("lease: %v", err)
	}
	f.wantNewTokens(res.Leases)
	sort.Slice(res.Leases, func(i, j int) bool {
		a, b := res.Leases[i], res.Leases[j]
		if a.WebhookID != b.WebhookID {
			return a.WebhookID < b.WebhookID
		}
		if !a.Due.Equal(b.Due) {
			return a.Due.Before(b.Due)
		}
		return a.ID < b.ID
	})
	return res
}

// wantNewTokens checks that each lease has a token no lease had before.
func (f *fixture) wantNewTokens(leases []store.Lease) {
	f.t.Helper()
	for _, l := range leases {
		if l.Token == "" || f.tokens[l.Token] {
			f.t.Errorf("lease of job %q has token %q, want a new one", l.ID, l.Token)
		}
		f.tokens[l.Token] = true
	}
}

// leaseOne leases the one due job of webhook at now.
func (f *fixture) leaseOne(now time.Time, webhook string) store.Lease {
	f.t.Helper()
	res := f.lease(now, map[string]int{webhook: 1})
	if len(res.Leases) != 1 {
		f.t.Fatalf("lease at %s: got %d jobs of %q, want 1", now, len(res.Leases), webhook)
	}
	return res.Leases[0]
}

// leased is the lease that Lease at now for a minute should return for j.
func leased(j store.Job, attempts int, now time.Time) store.Lease {
	j.Attempts = attempts
	return store.Lease{Job: j, Until: now.Add(time.Minute)}
}

// diffOpts compare stores' answers: nil and empty are the same, tokens are
// checked by lease, and times by instant (time.Time.Equal).
var diffOpts = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(store.Lease{}, "Token"),
}

func cmpDiff(want, got any) string { return cmp.Diff(want, got, diffOpts...) }

// wantLeases checks what Lease at now returns for want.
func (f *fixture) wantLeases(now time.Time, want map[string]int, leases []store.Lease, next map[string]time.Time) {
	f.t.Helper()
	got := f.lease(now, want)
	wantRes := store.LeaseResult{Leases: leases, Next: next}
	if diff := cmp.Diff(wantRes, got, diffOpts...); diff != "" {
		f.t.Errorf("lease at %s (-want +got):\n%s", now.Sub(f.base), diff)
	}
}

// State is what a store shows at a time: the depth, and per webhook the dead
// letters and the history (absent when none).
type State struct {
	Depth       store.Depth
	DeadLetters map[string][]store.DeadLetter
	History     map[string][]history.Entry
}

// wantState checks the state at now of the webhooks named.
func (f *fixture) wantState(now time.Time, want State, webhooks ...string) {
	f.t.Helper()
	if diff := cmpDiff(want, f.snapshot(now, webhooks...)); diff != "" {
		f.t.Errorf("state at %s (-want +got):\n%s", now.Sub(f.base), diff)
	}
}

// snapshot returns the state at now of the webhooks named.
func (f *fixture) snapshot(now time.Time, webhooks ...string) State {
	f.t.Helper()
	got := State{DeadLetters: map[string][]store.DeadLetter{}, History: map[string][]history.Entry{}}
	var err error
	if got.Depth, err = f.s.Depth(f.ctx, now); err != nil {
		f.t.Fatalf("depth: %v", err)
	}
	for _, w := range webhooks {
		dead, err := f.s.DeadLetters(f.ctx, w)
		if err != nil {
			f.t.Fatalf("dead letters of %q: %v", w, err)
		}
		if len(dead) > 0 {
			got.DeadLetters[w] = dead
		}
		h, err := f.s.History(f.ctx, w, Limits().History+10)
		if err != nil {
			f.t.Fatalf("history of %q: %v", w, err)
		}
		if len(h) > 0 {
			got.History[w] = h
		}
	}
	return got
}

// maintain runs Maintain at now with maxAge and checks what it did.
func (f *fixture) maintain(now time.Time, maxAge time.Duration, want store.Maintenance) {
	f.t.Helper()
	got, err := f.s.Maintain(f.ctx, now, maxAge)
	if err != nil {
		f.t.Fatalf("maintain: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("maintain at %s (-want +got):\n%s", now.Sub(f.base), diff)
	}
}

// dead is the dead letter a job becomes.
func dead(j store.Job, attempts int, errText string, died time.Time) store.DeadLetter {
	j.Attempts = attempts
	return store.DeadLetter{Job: j, Error: errText, Died: died}
}
