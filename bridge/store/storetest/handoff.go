package storetest

import (
	"errors"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

var errNoHandoff = errors.New("no HandoffTx")

// Cases of store.HandoffTx, run on the stores whose Ingest offers it.
var handoffCases = []testCase{
	{"a job enqueued leased is the caller's: Lease skips it, its token acks it", func(f *fixture) {
		a, b := f.job("a", "w", 0, 0), f.job("b", "w", 0, 0)
		got := f.handoff(f.at(time.Minute), []store.Job{a}, b)
		f.wantHanded(got, handedLease(a, f.at(time.Minute)))
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1, Leased: 1}}, "w")
		f.wantLeases(f.base, map[string]int{"w": 5}, []store.Lease{leased(b, 1, f.base)}, nil)
		if err := f.s.Ack(f.ctx, got[0], f.entry(a, 1, 200)); err != nil {
			f.t.Fatalf("ack the handed lease: %v", err)
		}
		f.wantState(f.base, State{
			Depth:   store.Depth{Leased: 1}, // b's
			History: map[string][]history.Entry{"w": {f.entry(a, 1, 200)}},
		}, "w")
	}},

	{"a lease made at commit runs out like any other: the job comes back, its attempt counted", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		f.handoff(f.at(time.Minute), []store.Job{a})
		f.wantLeases(f.at(30*time.Second), map[string]int{"w": 1}, nil, nil)
		f.maintain(f.at(2*time.Minute), 24*time.Hour, store.Maintenance{Reclaimed: 1})
		f.wantLeases(f.at(2*time.Minute), map[string]int{"w": 1}, []store.Lease{leased(a, 2, f.at(2*time.Minute))}, nil)
	}},

	{"a handed job released is queued again, its attempt not counted", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		got := f.handoff(f.at(time.Minute), []store.Job{a})
		if err := f.s.Release(f.ctx, got[0]); err != nil {
			f.t.Fatalf("release: %v", err)
		}
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1}}, "w")
		f.wantLeases(f.base, map[string]int{"w": 1}, []store.Lease{leased(a, 1, f.base)}, nil)
	}},

	{"a job enqueued leased whose id is already queued is neither added nor leased", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		f.enqueue(a)
		again := a
		again.Payload = `{"other":true}`
		f.wantHanded(f.handoff(f.at(time.Minute), []store.Job{again}))
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1}}, "w")
		f.wantLeases(f.base, map[string]int{"w": 1}, []store.Lease{leased(a, 1, f.base)}, nil)
	}},
}

// handoff commits, in one Ingest, leasedJobs leased until until and queued
// queued, and returns what Handed says then. The case is skipped on a store
// without HandoffTx.
func (f *fixture) handoff(until time.Time, leasedJobs []store.Job, queued ...store.Job) []store.Lease {
	f.t.Helper()
	var last store.HandoffTx
	err := f.s.Ingest(f.ctx, func(tx store.Tx) error {
		htx, ok := tx.(store.HandoffTx)
		if !ok {
			return errNoHandoff
		}
		last = htx
		for _, j := range leasedJobs {
			if err := htx.EnqueueLeased(f.ctx, j, until); err != nil {
				return err
			}
		}
		for _, j := range queued {
			if err := htx.Enqueue(f.ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err == errNoHandoff {
		f.t.Skip("the store's transactions do not lease at commit (store.HandoffTx)")
	}
	if err != nil {
		f.t.Fatalf("ingest: %v", err)
	}
	got := last.Handed()
	f.wantNewTokens(got)
	return got
}

// handedLease is the lease Handed should return for j leased until until.
func handedLease(j store.Job, until time.Time) store.Lease {
	j.Attempts++
	return store.Lease{Job: j, Until: until}
}

func (f *fixture) wantHanded(got []store.Lease, want ...store.Lease) {
	f.t.Helper()
	if diff := cmpDiff(want, got); diff != "" {
		f.t.Errorf("handed (-want +got):\n%s", diff)
	}
}
