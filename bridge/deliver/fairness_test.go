package deliver

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// TestBlackHolesDoNotHoldHealthyWebhooks: with 5 of 10 webhooks accepting
// connections and never answering, the other 5 get all their deliveries
// while the black holes still hold their requests.
func TestBlackHolesDoNotHoldHealthyWebhooks(t *testing.T) {
	const jobs = 20
	var healthy, holes []*hooktest.Receiver
	var hooks []*rule.Webhook
	for i := range 10 {
		rc := hooktest.New(t)
		if i%2 == 0 {
			rc = hole(t)
			holes = append(holes, rc)
		} else {
			healthy = append(healthy, rc)
		}
		hooks = append(hooks, webhook(fmt.Sprintf("hook%02d", i), rc.URL()))
	}
	h := newHarness(t, hooks...)
	for _, w := range hooks {
		h.enqueue(w.ID, jobs)
	}
	p := h.params(time.Minute) // a black hole holds its worker for a minute
	p.Workers = 12             // restricted webhooks hold at most 6
	h.run(p)

	waitFor(t, "the healthy webhooks to get every delivery", func() bool {
		for _, rc := range healthy {
			if rc.Count() < jobs {
				return false
			}
		}
		return true
	})
	for i, rc := range holes {
		if n, in := rc.Count(), rc.InFlight(); n != 1 || in != 1 {
			t.Errorf("black hole %d got %d requests, %d of them unanswered; want 1, held (one worker)", i, n, in)
		}
	}

	for _, rc := range holes {
		rc.Release()
	}
	waitFor(t, "every job to be delivered", func() bool { return h.depth() == store.Depth{} })
	for i, rc := range append(healthy, holes...) {
		if n := rc.Count(); n != jobs {
			t.Errorf("receiver %d got %d requests, want %d", i, n, jobs)
		}
	}
}

// TestRestrictedHoldHalfTheWorkers: failing and unproven webhooks together
// hold at most half the workers, so a proven webhook keeps the other half
// however many dead webhooks appear.
func TestRestrictedHoldHalfTheWorkers(t *testing.T) {
	good := hooktest.New(t)
	h := newHarness(t, webhook("hookgood", good.URL()))
	h.enqueue("hookgood", 1)
	p := h.params(time.Minute)
	p.Workers = 4
	p.PollEvery = time.Hour
	d, _ := h.run(p)
	waitFor(t, "the first delivery, which proves the webhook", func() bool { return h.depth() == store.Depth{} })

	hooks := []*rule.Webhook{webhook("hookgood", good.URL())}
	var holes []*hooktest.Receiver
	for i := range 4 {
		rc := hole(t)
		holes = append(holes, rc)
		hooks = append(hooks, webhook(fmt.Sprintf("hookhole%d", i), rc.URL()))
	}
	h.setHooks(hooks...)
	for _, w := range hooks[1:] {
		h.enqueue(w.ID, 2)
	}
	h.enqueue("hookgood", 20)
	d.Wake()

	waitFor(t, "the proven webhook to get every delivery", func() bool { return good.Count() == 21 })
	held := 0
	for _, rc := range holes {
		if rc.Count() != rc.InFlight() {
			t.Errorf("a black hole answered before it was released")
		}
		held += rc.InFlight()
	}
	if held != 2 {
		t.Errorf("black holes hold %d requests, want 2 (half of 4 workers)", held)
	}
	for _, rc := range holes {
		rc.Release()
	}
	waitFor(t, "every job to be delivered", func() bool { return h.depth() == store.Depth{} })
}

func TestPerWebhookLimit(t *testing.T) {
	rc := hooktest.New(t, hooktest.Delay(50*time.Millisecond))
	h := newHarness(t, webhook("hooklimit", rc.URL()))
	h.enqueue("hooklimit", 30)
	p := h.params(time.Minute)
	p.PerWebhook = 3
	h.run(p)

	waitFor(t, "every job to be delivered", func() bool { return h.depth() == store.Depth{} })
	if most := rc.MaxInFlight(); most != 3 {
		t.Errorf("at most %d requests were in flight at once, want PerWebhook = 3", most)
	}
}

// TestFailingWebhookGetsOneRequest: once a proven webhook fails, it gets one
// request at a time until one succeeds. The webhook keeps its id and moves
// between receivers, so each receiver sees one phase of it.
func TestFailingWebhookGetsOneRequest(t *testing.T) {
	const perWebhook = 4
	proving := hooktest.New(t)
	h := newHarness(t, webhook("hookfailing", proving.URL()))
	h.enqueue("hookfailing", 1)
	p := h.params(time.Minute)
	p.PerWebhook = perWebhook
	p.PollEvery = time.Hour
	p.Retry = RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxAttempts: 1000, MaxAge: time.Hour}
	d, _ := h.run(p)
	waitFor(t, "the first delivery, which proves the webhook", func() bool { return h.depth() == store.Depth{} })

	// Healthy, it gets perWebhook requests at once; they all fail.
	failing := hooktest.New(t, hooktest.Statuses(500), hooktest.Delay(20*time.Millisecond))
	h.setHooks(webhook("hookfailing", failing.URL()))
	h.enqueue("hookfailing", 10)
	d.Wake()
	waitFor(t, "a request leased after the failures", func() bool { return failing.Count() > perWebhook })
	if most := failing.MaxInFlight(); most != perWebhook {
		t.Errorf("while healthy, at most %d requests were in flight, want %d", most, perWebhook)
	}

	// Failing, it gets one at a time.
	still := hooktest.New(t, hooktest.Statuses(500), hooktest.Delay(20*time.Millisecond))
	h.setHooks(webhook("hookfailing", still.URL()))
	waitFor(t, "requests to the failing webhook", func() bool { return still.Count() >= 10 })
	if most := still.MaxInFlight(); most != 1 {
		t.Errorf("while failing, %d requests were in flight at once, want 1", most)
	}

	// One success, and it gets perWebhook again.
	recovered := hooktest.New(t, hooktest.Delay(200*time.Millisecond))
	h.setHooks(webhook("hookfailing", recovered.URL()))
	waitFor(t, "every job to be delivered", func() bool { return h.depth() == store.Depth{} })
	if most := recovered.MaxInFlight(); most != perWebhook {
		t.Errorf("after it recovered, at most %d requests were in flight, want %d", most, perWebhook)
	}
}

// TestRetryAfterPausesWebhook: a 503 with Retry-After holds every job of the
// webhook, not only the one that got it.
func TestRetryAfterPausesWebhook(t *testing.T) {
	t.Run("pause", func(t *testing.T) {
		rc := hooktest.New(t, hooktest.Statuses(http.StatusServiceUnavailable, 200), hooktest.RetryAfter("1"))
		h := newHarness(t, webhook("hookpause", rc.URL()))
		h.enqueue("hookpause", 2)
		p := h.params(time.Minute)
		p.Retry.Max = time.Hour
		h.run(p)

		waitFor(t, "both jobs to be delivered", func() bool { return h.depth() == store.Depth{} })
		reqs := rc.Requests()
		if len(reqs) != 3 {
			t.Fatalf("receiver got %d requests, want 3 (one 503, then both jobs):\n%s", len(reqs), hooktest.Describe(reqs))
		}
		// By the receiver's clock: the 503 was answered after it was received,
		// and nothing came within the second it asked for after that.
		if gap := reqs[1].Received.Sub(reqs[0].Received); gap < time.Second {
			t.Errorf("the next request came %s after the 503 with Retry-After: 1", gap)
		}
	})
	t.Run("capped at retry.max", func(t *testing.T) {
		rc := hooktest.New(t, hooktest.Statuses(http.StatusTooManyRequests, 200), hooktest.RetryAfter("3600"))
		h := newHarness(t, webhook("hookcapped", rc.URL()))
		h.enqueue("hookcapped", 1)
		h.run(h.params(time.Minute)) // retry.max 50ms
		waitFor(t, "the job to be delivered after retry.max, not an hour", func() bool { return h.depth() == store.Depth{} })
	})
}

// TestRoundRobin: when workers are short, free workers go round the webhooks
// with due jobs, so a webhook with one job is served long before two busy
// webhooks' queues are drained.
func TestRoundRobin(t *testing.T) {
	busyA := hooktest.New(t, hooktest.Delay(20*time.Millisecond))
	busyB := hooktest.New(t, hooktest.Delay(20*time.Millisecond))
	quiet := hooktest.New(t)
	h := newHarness(t, webhook("hooka", busyA.URL()), webhook("hookb", busyB.URL()), webhook("hookc", quiet.URL()))
	h.enqueue("hooka", 20)
	h.enqueue("hookb", 20)
	h.enqueue("hookc", 1)
	p := h.params(time.Minute)
	p.Workers = 2
	p.PerWebhook = 2
	h.run(p)

	waitFor(t, "the quiet webhook's delivery", func() bool { return quiet.Count() == 1 })
	if n := busyA.Count() + busyB.Count(); n > 8 {
		t.Errorf("the busy webhooks got %d requests before the quiet one got its only one, want at most 8", n)
	}
	waitFor(t, "every job to be delivered", func() bool { return h.depth() == store.Depth{} })
}

// TestPlan shows the fairness rules on the scheduler alone: which webhooks
// are asked for how many jobs, given what is in flight.
func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	healthy := func(inFlight int) *hookState { return &hookState{proven: true, check: true, inFlight: inFlight} }
	tests := []struct {
		name       string
		workers    int
		lastServed string
		state      map[string]*hookState
		want       map[string]int
	}{
		{
			name:    "a proven webhook gets up to PerWebhook (3)",
			workers: 10,
			state:   map[string]*hookState{"a": healthy(1)},
			want:    map[string]int{"a": 2},
		},
		{
			name:    "an unproven webhook gets one (slow start)",
			workers: 10,
			state:   map[string]*hookState{"a": {check: true}},
			want:    map[string]int{"a": 1},
		},
		{
			name:    "a failing webhook with one in flight gets none",
			workers: 10,
			state:   map[string]*hookState{"a": {proven: true, failing: true, check: true, inFlight: 1}, "b": healthy(0)},
			want:    map[string]int{"b": 3},
		},
		{
			name:    "restricted webhooks get half the workers",
			workers: 4,
			state: map[string]*hookState{
				"a": {check: true}, "b": {check: true}, "c": {check: true}, "d": {proven: true, failing: true, check: true},
				"e": healthy(0),
			},
			want: map[string]int{"a": 1, "b": 1, "e": 2},
		},
		{
			name:    "in-flight restricted requests count against the half",
			workers: 4,
			state:   map[string]*hookState{"a": {inFlight: 1}, "b": {proven: true, failing: true, inFlight: 1}, "c": {check: true}},
			want:    nil,
		},
		{
			name:    "paused, or with nothing due, gets none",
			workers: 10,
			state: map[string]*hookState{
				"a": {proven: true, check: true, paused: now.Add(time.Second)},
				"b": {proven: true, hasNext: true, next: now.Add(time.Second)},
				"c": {proven: true},
				"d": {proven: true, hasNext: true, next: now},
			},
			want: map[string]int{"d": 3},
		},
		{
			name:       "short of workers, one each round-robin after the last served",
			workers:    4,
			lastServed: "b",
			state:      map[string]*hookState{"a": healthy(0), "b": healthy(0), "c": healthy(0), "d": healthy(1)},
			want:       map[string]int{"c": 1, "d": 1, "a": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hooks []*rule.Webhook
			for id := range tt.state {
				hooks = append(hooks, webhook(id, "http://127.0.0.1/"))
			}
			set, err := rule.NewSet(hooks)
			if err != nil {
				t.Fatal(err)
			}
			s := newScheduler(tt.workers, 3)
			s.refresh(set)
			s.state, s.lastServed = tt.state, tt.lastServed
			for i, id := range s.order {
				s.hooks[i] = tt.state[id]
				s.hooks[i].idx = i
			}
			for _, st := range tt.state {
				s.inFlight += st.inFlight
				if st.inFlight > 0 {
					s.busy[st] = struct{}{}
				}
			}
			if diff := cmp.Diff(tt.want, s.plan(now)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkTurn is the scheduler's share of one turn of the Dispatcher's
// loop (plan, then the next timer), with 8 webhooks of n having jobs due
// and the workers all free: what every finished request costs the loop.
// It walks the webhooks marked as having something to do, not all.
func BenchmarkTurn(b *testing.B) {
	for _, n := range []int{40, 4000} {
		b.Run(fmt.Sprintf("webhooks=%d", n), func(b *testing.B) {
			var hooks []*rule.Webhook
			for i := range n {
				hooks = append(hooks, webhook(fmt.Sprintf("hook%05d", i), "http://127.0.0.1/"))
			}
			set, err := rule.NewSet(hooks)
			if err != nil {
				b.Fatal(err)
			}
			s := newScheduler(32, 8)
			s.refresh(set)
			now := time.Now()
			for i, st := range s.hooks {
				st.check, st.proven = false, true
				if i%(n/8) == 0 {
					st.noteDue(now)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if want := s.plan(now); len(want) != 8 {
					b.Fatalf("plan asked %d webhooks, want 8", len(want))
				}
				s.nextEvent(now)
			}
		})
	}
}
