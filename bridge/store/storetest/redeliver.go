package storetest

import (
	"errors"
	"time"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// redeliveries returns the store's redelivery methods.
func (f *fixture) redeliveries() store.Redeliveries { return f.s }

// kill makes a dead letter of each job in turn, failing its one attempt at the
// case's now, and returns the dead letters, the last to die first.
func (f *fixture) kill(jobs ...store.Job) []store.DeadLetter {
	f.t.Helper()
	var out []store.DeadLetter
	for _, j := range jobs {
		f.enqueue(j)
		l := f.leaseOne(f.base, j.WebhookID)
		fl := failure(f, j, 1, 0)
		fl.MaxAttempts = 1
		if d, err := f.s.Fail(f.ctx, l, fl); err != nil || !d {
			f.t.Fatalf("fail job %q: got dead %v, error %v; want dead", j.ID, d, err)
		}
		out = append([]store.DeadLetter{dead(j, 1, fl.Error, f.base)}, out...)
	}
	return out
}

// redelivered is j as a redelivery made at now.
func redelivered(j store.Job, now time.Time) store.Job {
	j.Created, j.Due, j.Redelivery, j.Attempts = now, now, true, 0
	return j
}

// sent is the history entry of an attempt at j whose request carried j's
// content type, as the sender records it.
func (f *fixture) sent(j store.Job, attempt, status int) history.Entry {
	e := f.entry(j, attempt, status)
	e.Request.Headers = history.MakeHeaders(map[string]string{"Content-Type": j.ContentType, "Authorization": history.Masked})
	return e
}

var redeliverCases = []testCase{
	{"redeliver takes a dead letter back to the queue, started afresh", func(f *fixture) {
		a, other := f.job("a", "w", -2*hour, -hour), f.job("b", "w", -2*hour, -hour)
		f.kill(a, other)
		hist := f.snapshot(f.base, "w").History
		later := f.at(hour)
		if err := f.redeliveries().Redeliver(f.ctx, "w", "a", later); err != nil {
			f.t.Fatalf("redeliver: %v", err)
		}
		f.wantState(later, State{
			Depth:       store.Depth{Ready: 1, Dead: 1},
			DeadLetters: map[string][]store.DeadLetter{"w": {dead(other, 1, "status 503", f.base)}},
			History:     hist,
		}, "w")
		f.wantLeases(later, map[string]int{"w": 5}, []store.Lease{leased(redelivered(a, later), 1, later)}, nil)
	}},

	{"redeliver takes the newest history entry of a delivery that is not a dead letter", func(f *fixture) {
		a := f.job("a", "w", -hour, -hour)
		a.ContentType = "application/cloudevents+json"
		f.enqueue(a)
		l := f.leaseOne(f.base, "w")
		if err := f.s.Ack(f.ctx, l, f.sent(a, 1, 200)); err != nil {
			f.t.Fatalf("ack: %v", err)
		}
		newer := f.sent(a, 2, 200)
		newer.Request.Content = `{"id":"newer"}`
		f.record(newer)
		ping := f.sent(a, 1, 200) // a ping of the same id, newest of all: not a delivery
		ping.Action, ping.Request.Content = string(event.Ping), `{"action":"ping"}`
		f.record(ping)

		if err := f.redeliveries().Redeliver(f.ctx, "w", "a", f.base); err != nil {
			f.t.Fatalf("redeliver: %v", err)
		}
		want := redelivered(a, f.base)
		want.Payload = `{"id":"newer"}`
		f.wantState(f.base, State{
			Depth:   store.Depth{Ready: 1},
			History: map[string][]history.Entry{"w": {ping, newer, f.sent(a, 1, 200)}},
		}, "w")
		f.wantLeases(f.base, map[string]int{"w": 5}, []store.Lease{leased(want, 1, f.base)}, nil)
	}},

	{"redeliver from history leaves out a content type that custom headers set", func(f *fixture) {
		a := f.job("a", "w", 0, 0)
		e := f.sent(a, 1, 200)
		for i, h := range e.Request.Headers {
			if h.Name == "Content-Type" {
				e.Request.Headers[i].Value = history.Masked
			}
		}
		f.record(e)
		if err := f.redeliveries().Redeliver(f.ctx, "w", "a", f.base); err != nil {
			f.t.Fatalf("redeliver: %v", err)
		}
		want := redelivered(a, f.base)
		want.ContentType = ""
		f.wantLeases(f.base, map[string]int{"w": 5}, []store.Lease{leased(want, 1, f.base)}, nil)
	}},

	{"redeliver of a delivery queued or leased conflicts and changes nothing", func(f *fixture) {
		queued, leasedJob := f.job("queued", "w", 0, hour), f.job("leased", "w", 0, -hour)
		f.enqueue(leasedJob)
		f.leaseOne(f.base, "w")
		f.enqueue(queued)
		f.record(f.sent(queued, 1, 503))
		f.record(f.sent(leasedJob, 1, 503))
		before := f.snapshot(f.base, "w")
		for _, id := range []string{"queued", "leased"} {
			if err := f.redeliveries().Redeliver(f.ctx, "w", id, f.base); !errors.Is(err, store.ErrConflict) {
				f.t.Errorf("redeliver %q: got %v, want ErrConflict", id, err)
			}
		}
		f.wantState(f.base, before, "w")
	}},

	{"redeliver of a delivery the webhook never had, or of a ping, is not found", func(f *fixture) {
		f.kill(f.job("dead2", "w2", 0, 0))
		f.record(f.sent(f.job("sent2", "w2", 0, 0), 1, 200))
		ping := f.sent(f.job("ping", "w", 0, 0), 1, 200)
		ping.Action = string(event.Ping)
		f.record(ping)
		before := f.snapshot(f.base, "w", "w2")
		for _, id := range []string{"dead2", "sent2", "ping", "nothing"} {
			if err := f.redeliveries().Redeliver(f.ctx, "w", id, f.base); !errors.Is(err, store.ErrNotFound) {
				f.t.Errorf("redeliver %q: got %v, want ErrNotFound", id, err)
			}
		}
		f.wantState(f.base, before, "w", "w2")
	}},

	{"redeliver dead letters queues each but those whose delivery is queued again", func(f *fixture) {
		if Limits().DeadLetters != 2 {
			f.t.Fatalf("this case assumes Limits().DeadLetters is 2")
		}
		a, b, x := f.job("a", "w", 0, -hour), f.job("b", "w", 0, -hour), f.job("x", "w2", 0, -hour)
		deadA := f.kill(a, b)[1]
		deadX := f.kill(x)
		again := f.job("a", "w", 0, hour) // the registry sent a's event again
		f.enqueue(again)
		hist := f.snapshot(f.base, "w", "w2").History

		n, err := f.redeliveries().RedeliverDeadLetters(f.ctx, "w", f.base)
		if err != nil || n != 1 {
			f.t.Fatalf("redeliver dead letters: got %d, %v; want 1 queued", n, err)
		}
		f.wantState(f.base, State{
			Depth:       store.Depth{Ready: 1, Delayed: 1, Dead: 2},
			DeadLetters: map[string][]store.DeadLetter{"w": {deadA}, "w2": deadX},
			History:     hist,
		}, "w", "w2")
		f.wantLeases(f.base, map[string]int{"w": 5}, []store.Lease{leased(redelivered(b, f.base), 1, f.base)},
			map[string]time.Time{"w": again.Due})
		if n, err := f.redeliveries().RedeliverDeadLetters(f.ctx, "w3", f.base); err != nil || n != 0 {
			f.t.Errorf("redeliver dead letters of a webhook without any: got %d, %v; want 0", n, err)
		}
	}},

	{"purge dead letters removes one webhook's dead letters only", func(f *fixture) {
		f.kill(f.job("a", "w", 0, 0), f.job("b", "w", 0, 0))
		deadX := f.kill(f.job("x", "w2", 0, 0))
		hist := f.snapshot(f.base, "w", "w2").History
		n, err := f.redeliveries().PurgeDeadLetters(f.ctx, "w")
		if err != nil || n != 2 {
			f.t.Fatalf("purge: got %d, %v; want 2", n, err)
		}
		f.wantState(f.base, State{
			Depth:       store.Depth{Dead: 1},
			DeadLetters: map[string][]store.DeadLetter{"w2": deadX},
			History:     hist,
		}, "w", "w2")
		if n, err := f.redeliveries().PurgeDeadLetters(f.ctx, "w"); err != nil || n != 0 {
			f.t.Errorf("purge again: got %d, %v; want 0", n, err)
		}
	}},
}
