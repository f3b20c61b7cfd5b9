package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

var recordCases = []testCase{
	{"history keeps the newest Limits.History entries per webhook", func(f *fixture) {
		a := f.job("a", "w1", 0, 0)
		f.enqueue(a)
		pings := make([]history.Entry, 4)
		for i := range pings {
			pings[i] = f.entry(f.job("ping", "w1", 0, 0), i+1, 200)
		}
		other := f.entry(f.job("ping", "w2", 0, 0), 1, 200)
		for _, e := range []history.Entry{pings[0], pings[1], other, pings[2]} {
			f.record(e)
		}
		l := f.leaseOne(f.base, "w1")
		if err := f.s.Ack(f.ctx, l, f.entry(a, 1, 204)); err != nil {
			f.t.Fatalf("ack: %v", err)
		}
		f.record(pings[3])
		if Limits().History != 3 {
			f.t.Fatalf("this case assumes Limits().History is 3")
		}
		f.wantState(f.base, State{History: map[string][]history.Entry{
			"w1": {pings[3], f.entry(a, 1, 204), pings[2]},
			"w2": {other},
		}}, "w1", "w2")
		got, err := f.s.History(f.ctx, "w1", 2)
		if err != nil {
			f.t.Fatal(err)
		}
		if diff := cmpDiff([]history.Entry{pings[3], f.entry(a, 1, 204)}, got); diff != "" {
			f.t.Errorf("history with limit 2 (-want +got):\n%s", diff)
		}
	}},

	{"concurrent acks each record their own entry", func(f *fixture) {
		// Acks made at once run together; each entry, of its own length,
		// must come out as it went in (stores reuse encoding buffers).
		hooks := make(map[string]int)
		var jobs []store.Job
		for i := range 8 * Limits().History {
			j := f.job(fmt.Sprintf("j%02d", i), fmt.Sprintf("w%d", i%8), 0, 0)
			j.Payload = fmt.Sprintf(`{"id":"%s","pad":"%s"}`, j.ID, strings.Repeat("x", 97*i))
			jobs = append(jobs, j)
			hooks[j.WebhookID]++
		}
		f.enqueue(jobs...)
		leases := f.lease(f.base, hooks).Leases
		if len(leases) != len(jobs) {
			f.t.Fatalf("leased %d jobs, want %d", len(leases), len(jobs))
		}
		var wg sync.WaitGroup
		for _, l := range leases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.s.Ack(f.ctx, l, f.entry(l.Job, 1, 200)); err != nil {
					f.t.Errorf("ack %q: %v", l.ID, err)
				}
			}()
		}
		wg.Wait()
		for w := range hooks {
			var want []history.Entry
			for _, j := range jobs {
				if j.WebhookID == w {
					want = append(want, f.entry(j, 1, 200))
				}
			}
			got, err := f.s.History(f.ctx, w, Limits().History)
			if err != nil {
				f.t.Fatal(err)
			}
			byID := func(a, b history.Entry) int { return strings.Compare(a.ID, b.ID) }
			slices.SortFunc(got, byID)
			if diff := cmpDiff(want, got); diff != "" {
				f.t.Errorf("history of %s (-want +got):\n%s", w, diff)
			}
		}
	}},

	{"dead letters keep the newest Limits.DeadLetters per webhook", func(f *fixture) {
		if Limits().DeadLetters != 2 {
			f.t.Fatalf("this case assumes Limits().DeadLetters is 2")
		}
		jobs := []store.Job{f.job("a", "w1", 0, -3*time.Second), f.job("b", "w1", 0, -2*time.Second),
			f.job("c", "w1", 0, -time.Second), f.job("x", "w2", 0, 0)}
		f.enqueue(jobs...)
		var hist []history.Entry
		for i, j := range jobs {
			l := f.leaseOne(f.base, j.WebhookID)
			fl := failure(f, j, 1, 0)
			fl.MaxAttempts, fl.Now = 1, f.at(time.Duration(i)*time.Second)
			if dead, err := f.s.Fail(f.ctx, l, fl); err != nil || !dead {
				f.t.Fatalf("fail job %q: got dead %v, error %v; want dead", j.ID, dead, err)
			}
			if j.WebhookID == "w1" {
				hist = append([]history.Entry{fl.Entry}, hist...)
			}
		}
		f.wantState(f.base, State{
			Depth: store.Depth{Dead: 3},
			DeadLetters: map[string][]store.DeadLetter{
				"w1": {dead(jobs[2], 1, "status 503", f.at(2*time.Second)), dead(jobs[1], 1, "status 503", f.at(time.Second))},
				"w2": {dead(jobs[3], 1, "status 503", f.at(3*time.Second))},
			},
			History: map[string][]history.Entry{"w1": hist, "w2": {f.entry(jobs[3], 1, 503)}},
		}, "w1", "w2")
	}},

	{"a deleted webhook's jobs, dead letters and history go with it", func(f *fixture) {
		w1, w2 := f.createWebhook("w1", "webhook1"), f.createWebhook("w2", "webhook2")
		for _, w := range []string{"w1", "w2"} {
			dying := f.job(w+"-dead", w, 0, -hour)
			f.enqueue(dying)
			l := f.leaseOne(f.base, w)
			fl := failure(f, dying, 1, 0)
			fl.MaxAttempts = 1
			if _, err := f.s.Fail(f.ctx, l, fl); err != nil {
				f.t.Fatal(err)
			}
			f.enqueue(f.job(w+"-leased", w, 0, -minute))
			f.leaseOne(f.base, w)
			f.enqueue(f.job(w+"-ready", w, 0, 0), f.job(w+"-delayed", w, 0, hour))
			f.record(f.entry(f.job("ping", w, 0, 0), 1, 200))
		}
		w2State := f.snapshot(f.base, "w2")

		if err := f.s.DeleteWebhook(f.ctx, "w1"); err != nil {
			f.t.Fatalf("delete: %v", err)
		}
		w2State.Depth = store.Depth{Ready: 1, Delayed: 1, Leased: 1, Dead: 1}
		f.wantState(f.base, w2State, "w1", "w2")
		f.wantWebhooks(w2)
		f.wantLeases(f.at(2*hour), map[string]int{"w1": 10}, nil, nil)
		if err := f.s.DeleteWebhook(f.ctx, "w1"); !errors.Is(err, store.ErrNotFound) {
			f.t.Errorf("delete again: got %v, want ErrNotFound", err)
		}
		// The same name made again is a new webhook that inherits nothing.
		w1.ID = "w1-again"
		if err := f.s.CreateWebhook(f.ctx, w1); err != nil {
			f.t.Fatalf("create again: %v", err)
		}
		f.wantState(f.base, w2State, "w1-again", "w2")
	}},
}

// record adds a history entry.
func (f *fixture) record(e history.Entry) {
	f.t.Helper()
	if err := f.s.Record(f.ctx, e); err != nil {
		f.t.Fatalf("record: %v", err)
	}
}
