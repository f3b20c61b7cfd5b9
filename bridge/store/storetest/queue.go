package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

const (
	minute = time.Minute
	hour   = time.Hour
)

var ingestCases = []testCase{
	{"concurrent duplicate enqueue commits one job per id", func(f *fixture) {
		// Like the registry retrying an envelope while the first try is still
		// being committed.
		a, b := f.job("a", "w1", 0, 0), f.job("b", "w2", 0, 0)
		const n = 12
		sawMark := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f.s.Ingest(f.ctx, func(tx store.Tx) error {
					seen, err := tx.Seen(f.ctx, "event")
					sawMark[i] = seen // the last run of fn decides
					if err != nil || seen {
						return err
					}
					for _, j := range []store.Job{a, b} {
						if err := tx.Enqueue(f.ctx, j); err != nil {
							return err
						}
					}
					return tx.MarkSeen(f.ctx, "event", f.at(hour))
				})
				if err != nil {
					f.t.Errorf("ingest %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		committed := 0
		for _, saw := range sawMark {
			if !saw {
				committed++
			}
		}
		if committed != 1 {
			f.t.Errorf("%d of %d ingestions did not see the mark and committed, want 1", committed, n)
		}
		f.wantState(f.base, State{Depth: store.Depth{Ready: 2}}, "w1", "w2")
		f.wantLeases(f.base, map[string]int{"w1": 5, "w2": 5},
			[]store.Lease{leased(a, 1, f.base), leased(b, 1, f.base)}, nil)
	}},

	{"enqueue of an id already queued or leased adds nothing", func(f *fixture) {
		a, b := f.job("a", "w", 0, -time.Second), f.job("b", "w", 0, 0)
		f.enqueue(a, b)
		f.leaseOne(f.base, "w") // a
		again := func(j store.Job) store.Job {
			j.Payload, j.Due = "other", f.at(-hour)
			return j
		}
		f.enqueue(again(a), again(b))
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1, Leased: 1}}, "w")
		f.wantLeases(f.base, map[string]int{"w": 5}, []store.Lease{leased(b, 1, f.base)}, nil)
	}},

	{"ingest is all or nothing", func(f *fixture) {
		old := f.job("old", "w", 0, 0)
		f.enqueue(old)
		f.ingest(func(tx store.Tx) error {
			if err := tx.MarkSeen(f.ctx, "e0", f.at(hour)); err != nil {
				return err
			}
			return tx.PutManifest(f.ctx, "repo", "sha256:1", "m1", "v1")
		})
		before := f.indexView()

		boom := errors.New("boom")
		err := f.s.Ingest(f.ctx, func(tx store.Tx) error {
			for _, op := range []func() error{
				func() error { return tx.Enqueue(f.ctx, f.job("new", "w", 0, 0)) },
				func() error { return tx.MarkSeen(f.ctx, "e1", f.at(hour)) },
				func() error { return tx.PutManifest(f.ctx, "repo", "sha256:2", "m2", "v1") },
				func() error { return tx.PutManifest(f.ctx, "other", "sha256:3", "m3", "") },
				func() error { return tx.DeleteTag(f.ctx, "repo", "v1") },
				func() error { return tx.DeleteManifest(f.ctx, "repo", "sha256:1") },
			} {
				if err := op(); err != nil {
					return err
				}
			}
			return boom
		})
		if !errors.Is(err, boom) {
			f.t.Errorf("ingest: got %v, want fn's error", err)
		}
		f.wantSeen(map[string]bool{"e0": true, "e1": false})
		f.wantIndex(before)
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1}}, "w")
		f.wantLeases(f.base, map[string]int{"w": 5}, []store.Lease{leased(old, 1, f.base)}, nil)
	}},
}

var queueCases = []testCase{
	{"an envelope's commit may queue 10,000 jobs, and a lease take them all", func(f *fixture) {
		// An envelope of 10 events for 1,000 webhooks: more values than one
		// Lua unpack takes, on Redis.
		const webhooks, perHook = 1000, 10
		var jobs []store.Job
		want := map[string]int{}
		for w := range webhooks {
			hook := fmt.Sprint("w", w)
			want[hook] = perHook
			for e := range perHook {
				jobs = append(jobs, f.job(fmt.Sprint(hook, "-e", e), hook, 0, 0))
			}
		}
		f.enqueue(jobs...)
		f.wantState(f.base, State{Depth: store.Depth{Ready: len(jobs)}})
		res := f.lease(f.base, want)
		if len(res.Leases) != len(jobs) {
			f.t.Fatalf("leased %d jobs, want %d", len(res.Leases), len(jobs))
		}
		payloads := map[string]string{}
		for _, j := range jobs {
			payloads[j.ID] = j.Payload
		}
		for _, l := range res.Leases {
			if p, ok := payloads[l.ID]; !ok || l.Payload != p {
				f.t.Errorf("leased job %q with payload %q, want one of the jobs queued, with its payload", l.ID, l.Payload)
			}
			delete(payloads, l.ID)
		}
		f.wantState(f.base, State{Depth: store.Depth{Leased: len(jobs)}})
	}},

	{"lease takes due jobs oldest first, per webhook asked, up to its count", func(f *fixture) {
		a := f.job("a", "w1", -hour, -3*time.Second)
		b := f.job("b", "w1", -2*hour, -2*time.Second) // made earlier, due later: due decides
		c := f.job("c", "w1", -3*hour, -time.Second)
		d := f.job("d", "w1", 0, hour) // delayed
		e := f.job("e", "w2", 0, -time.Second)
		g := f.job("g", "w2", 0, 10*minute) // delayed
		h := f.job("h", "w3", 0, -time.Second)
		f.enqueue(d, c, b, a, g, e, h)

		f.wantLeases(f.base, map[string]int{"w1": 2, "w2": 5, "w4": 1},
			[]store.Lease{leased(a, 1, f.base), leased(b, 1, f.base), leased(e, 1, f.base)},
			map[string]time.Time{"w1": c.Due, "w2": g.Due})
		f.wantState(f.base, State{Depth: store.Depth{Ready: 2, Delayed: 2, Leased: 3}}, "w1", "w2", "w3")
		// A count of 0 leases nothing but still reports Next.
		f.wantLeases(f.base, map[string]int{"w1": 0, "w3": 0}, nil,
			map[string]time.Time{"w1": c.Due, "w3": h.Due})
		f.wantLeases(f.base, map[string]int{"w1": 10}, []store.Lease{leased(c, 1, f.base)},
			map[string]time.Time{"w1": d.Due})
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1, Delayed: 2, Leased: 4}}, "w1", "w2", "w3")
		f.wantState(f.at(hour), State{Depth: store.Depth{Ready: 3, Leased: 4}}, "w1", "w2", "w3")
		f.wantLeases(f.at(hour), map[string]int{"w1": 10}, []store.Lease{leased(d, 1, f.at(hour))}, nil)
	}},

	{"an expired lease is reclaimed by Maintain with a new token", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		f.enqueue(a)
		l1 := f.leaseOne(f.base, "w")
		f.maintain(f.at(30*time.Second), 24*hour, store.Maintenance{})
		f.wantLeases(f.at(30*time.Second), map[string]int{"w": 1}, nil, nil)
		f.maintain(f.at(2*minute), 24*hour, store.Maintenance{Reclaimed: 1})
		f.wantState(f.at(2*minute), State{Depth: store.Depth{Ready: 1}}, "w")

		l2 := f.leaseOne(f.at(2*minute), "w")
		if diff := cmpDiff(leased(a, 2, f.at(2*minute)), l2); diff != "" {
			f.t.Errorf("lease after reclaim (-want +got):\n%s", diff)
		}
		if err := f.s.Ack(f.ctx, l1, f.entry(a, 1, 200)); !errors.Is(err, store.ErrLeaseLost) {
			f.t.Errorf("ack with the reclaimed lease: got %v, want ErrLeaseLost", err)
		}
		if err := f.s.Ack(f.ctx, l2, f.entry(a, 2, 200)); err != nil {
			f.t.Errorf("ack with the new lease: %v", err)
		}
		f.wantState(f.at(2*minute), State{History: map[string][]history.Entry{"w": {f.entry(a, 2, 200)}}}, "w")
		f.wantLeases(f.at(hour), map[string]int{"w": 1}, nil, nil)
	}},

	{"a lease no longer held changes nothing", func(f *fixture) {
		for _, gone := range []struct {
			name string
			end  func(f *fixture, l store.Lease, j store.Job) error
		}{
			{"acked", func(f *fixture, l store.Lease, j store.Job) error { return f.s.Ack(f.ctx, l, f.entry(j, 1, 200)) }},
			{"released", func(f *fixture, l store.Lease, _ store.Job) error { return f.s.Release(f.ctx, l) }},
			{"failed", func(f *fixture, l store.Lease, j store.Job) error {
				_, err := f.s.Fail(f.ctx, l, failure(f, j, 1, hour))
				return err
			}},
			{"webhook deleted", func(f *fixture, _ store.Lease, j store.Job) error { return f.s.DeleteWebhook(f.ctx, j.WebhookID) }},
		} {
			for _, op := range []struct {
				name string
				do   func(f *fixture, l store.Lease, j store.Job) error
			}{
				{"ack", func(f *fixture, l store.Lease, j store.Job) error { return f.s.Ack(f.ctx, l, f.entry(j, 9, 200)) }},
				{"fail", func(f *fixture, l store.Lease, j store.Job) error {
					_, err := f.s.Fail(f.ctx, l, failure(f, j, 1, 0))
					return err
				}},
				{"release", func(f *fixture, l store.Lease, _ store.Job) error { return f.s.Release(f.ctx, l) }},
			} {
				f.t.Run(gone.name+"/"+op.name, func(t *testing.T) {
					f := f.fresh(t)
					f.createWebhook("w", "webhook1")
					a := f.job("a", "w", 0, 0)
					f.enqueue(a)
					l := f.leaseOne(f.base, "w")
					if err := gone.end(f, l, a); err != nil {
						t.Fatalf("%s: %v", gone.name, err)
					}
					before := f.snapshot(f.base, "w")
					if err := op.do(f, l, a); !errors.Is(err, store.ErrLeaseLost) {
						t.Errorf("%s after %s: got %v, want ErrLeaseLost", op.name, gone.name, err)
					}
					f.wantState(f.base, before, "w")
				})
			}
		}
	}},

	{"fail queues the job again at its due time and records the attempt", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		f.enqueue(a)
		l := f.leaseOne(f.base, "w")
		fl := failure(f, a, 1, 5*minute)
		fl.MaxAttempts, fl.MaxAge = 3, hour
		if dead, err := f.s.Fail(f.ctx, l, fl); err != nil || dead {
			f.t.Fatalf("fail: got dead %v, error %v; want a retry", dead, err)
		}
		hist := map[string][]history.Entry{"w": {f.entry(a, 1, 503)}}
		f.wantState(f.at(4*minute), State{Depth: store.Depth{Delayed: 1}, History: hist}, "w")
		f.wantLeases(f.at(4*minute), map[string]int{"w": 1}, nil, map[string]time.Time{"w": f.at(5 * minute)})
		f.wantState(f.at(5*minute), State{Depth: store.Depth{Ready: 1}, History: hist}, "w")
		retry := a
		retry.Due = f.at(5 * minute)
		f.wantLeases(f.at(5*minute), map[string]int{"w": 1}, []store.Lease{leased(retry, 2, f.at(5*minute))}, nil)
	}},

	{"fail at maxattempts makes a dead letter", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		f.enqueue(a)
		l := f.leaseOne(f.base, "w")
		fl := failure(f, a, 1, minute)
		fl.MaxAttempts = 2
		if dead, err := f.s.Fail(f.ctx, l, fl); err != nil || dead {
			f.t.Fatalf("first fail: got dead %v, error %v; want a retry", dead, err)
		}
		l = f.leaseOne(f.at(minute), "w")
		fl = failure(f, a, 2, 2*minute)
		fl.MaxAttempts, fl.Now = 2, f.at(minute)
		if dead, err := f.s.Fail(f.ctx, l, fl); err != nil || !dead {
			f.t.Fatalf("second fail: got dead %v, error %v; want dead", dead, err)
		}
		last := a
		last.Due = f.at(minute)
		f.wantState(f.at(hour), State{
			Depth:       store.Depth{Dead: 1},
			DeadLetters: map[string][]store.DeadLetter{"w": {dead(last, 2, "status 503", f.at(minute))}},
			History:     map[string][]history.Entry{"w": {f.entry(a, 2, 503), f.entry(a, 1, 503)}},
		}, "w")
		f.wantLeases(f.at(hour), map[string]int{"w": 1}, nil, nil)
	}},

	{"fail past maxage makes a dead letter", func(f *fixture) {
		a := f.job("a", "w", -2*hour, 0)
		f.enqueue(a)
		l := f.leaseOne(f.base, "w")
		fl := failure(f, a, 1, minute)
		fl.MaxAttempts, fl.MaxAge = 15, hour
		if dead, err := f.s.Fail(f.ctx, l, fl); err != nil || !dead {
			f.t.Fatalf("fail: got dead %v, error %v; want dead", dead, err)
		}
		f.wantState(f.at(hour), State{
			Depth:       store.Depth{Dead: 1},
			DeadLetters: map[string][]store.DeadLetter{"w": {dead(a, 1, "status 503", f.base)}},
			History:     map[string][]history.Entry{"w": {f.entry(a, 1, 503)}},
		}, "w")
		f.wantLeases(f.at(hour), map[string]int{"w": 1}, nil, nil)
	}},

	{"maintain dead-letters queued jobs older than maxage", func(f *fixture) {
		// As a disabled webhook's held jobs: queued, never leased.
		old1 := f.job("old1", "w", -26*hour, -26*hour)
		old2 := f.job("old2", "w", -25*hour, hour) // delayed, but too old
		running := f.job("running", "w", -25*hour, -25*hour)
		fresh := f.job("fresh", "w", -hour, -hour)
		f.enqueue(running)
		f.leaseOne(f.base, "w") // leased, not queued: its worker may still deliver it
		f.enqueue(old1, old2, fresh)
		// Jobs dead-lettered together are added oldest made first, so the
		// last made shows first.
		f.maintain(f.base, 24*hour, store.Maintenance{Expired: 2})
		msg := store.ExpiredError(24 * hour)
		f.wantState(f.base, State{
			Depth:       store.Depth{Ready: 1, Leased: 1, Dead: 2},
			DeadLetters: map[string][]store.DeadLetter{"w": {dead(old2, 0, msg, f.base), dead(old1, 0, msg, f.base)}},
		}, "w")
		f.wantLeases(f.at(2*hour), map[string]int{"w": 5}, []store.Lease{leased(fresh, 1, f.at(2*hour))}, nil)
	}},

	{"release puts the job back due at once, its attempt not counted", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		f.enqueue(a)
		l := f.leaseOne(f.base, "w")
		if err := f.s.Release(f.ctx, l); err != nil {
			f.t.Fatalf("release: %v", err)
		}
		f.wantState(f.base, State{Depth: store.Depth{Ready: 1}}, "w")
		f.wantLeases(f.base, map[string]int{"w": 1}, []store.Lease{leased(a, 1, f.base)}, nil)
	}},

	{"depth counts ready, delayed, leased and dead jobs at now", func(f *fixture) {
		f.enqueue(f.job("r1", "w1", 0, -minute), f.job("r2", "w2", 0, 0),
			f.job("d1", "w1", 0, minute), f.job("d2", "w2", 0, hour), f.job("d3", "w2", 0, 2*hour),
			f.job("l1", "w3", 0, -hour), f.job("x1", "w4", 0, -hour))
		f.leaseOne(f.base, "w3")
		l := f.leaseOne(f.base, "w4")
		fl := failure(f, l.Job, 1, 0)
		fl.MaxAttempts = 1
		if _, err := f.s.Fail(f.ctx, l, fl); err != nil {
			f.t.Fatal(err)
		}
		for _, c := range []struct {
			at   time.Duration
			want store.Depth
		}{
			{-2 * hour, store.Depth{Delayed: 5, Leased: 1, Dead: 1}},
			{0, store.Depth{Ready: 2, Delayed: 3, Leased: 1, Dead: 1}},
			{minute, store.Depth{Ready: 3, Delayed: 2, Leased: 1, Dead: 1}},
			{3 * hour, store.Depth{Ready: 5, Leased: 1, Dead: 1}},
		} {
			got, err := f.s.Depth(f.ctx, f.at(c.at))
			if err != nil {
				f.t.Fatal(err)
			}
			if diff := cmpDiff(c.want, got); diff != "" {
				f.t.Errorf("depth at %s (-want +got):\n%s", c.at, diff)
			}
		}
	}},
}

// failure is a failed attempt at j at the case's now, due again after retry,
// with no limits.
func failure(f *fixture, j store.Job, attempt int, retry time.Duration) store.Failure {
	e := f.entry(j, attempt, 503)
	return store.Failure{Now: f.base, Due: f.at(retry), Error: e.Error, Entry: e}
}
