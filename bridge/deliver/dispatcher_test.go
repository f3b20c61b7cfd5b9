package deliver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// harness is a Dispatcher on a real SQLite store in a temporary directory.
type harness struct {
	t     *testing.T
	store *sqlite.Store
	hooks atomic.Pointer[rule.Set]
	logs  *logtest.Hook
}

func newHarness(t *testing.T, hooks ...*rule.Webhook) *harness {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{
		Dir: t.TempDir(), Sync: "normal", Limits: store.Limits{History: 1000, DeadLetters: 100},
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, store: st}
	h.setHooks(hooks...)
	return h
}

func (h *harness) setHooks(hooks ...*rule.Webhook) {
	h.t.Helper()
	set, err := rule.NewSet(hooks)
	if err != nil {
		h.t.Fatal(err)
	}
	h.hooks.Store(set)
}

// webhook returns an enabled webhook; its id is name.
func webhook(name, uri string) *rule.Webhook {
	w := &rule.Webhook{ID: name, Name: name, URI: uri}
	w.Defaults()
	return w
}

// enqueue commits n jobs for the webhook, due now, through Ingest as the
// receiver does, and returns their ids.
func (h *harness) enqueue(hookID string, n int) []string {
	h.t.Helper()
	return h.enqueueDue(hookID, n, time.Now())
}

// enqueueDue queues n jobs for the webhook, made and due at now.
func (h *harness) enqueueDue(hookID string, n int, now time.Time) []string {
	h.t.Helper()
	var ids []string
	err := h.store.Ingest(context.Background(), func(tx store.Tx) error {
		ids = ids[:0]
		for i := range n {
			id := fmt.Sprintf("%s-job-%02d-%d", hookID, i, now.UnixNano())
			ids = append(ids, id)
			err := tx.Enqueue(context.Background(), store.Job{
				ID: id, WebhookID: hookID, EventID: "event-" + id, Action: "push",
				Payload: `{"id":"` + id + `"}`, ContentType: "application/json",
				Created: now, Due: now,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
	return ids
}

// params returns the Params of a quick test: small backoff, a logger the
// test can read.
func (h *harness) params(timeout time.Duration) Params {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	h.logs = hook
	return Params{
		Queue:      h.store,
		Hooks:      h.hooks.Load,
		Sender:     NewSender(SenderParams{Version: "test", Timeout: timeout}),
		Workers:    8,
		PerWebhook: 4,
		Lease:      2 * time.Minute,
		Retry:      RetryPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 10, MaxAge: time.Hour},
		Log:        log,
	}
}

// run starts the Dispatcher; the test's cleanup stops it. The returned
// function stops it now and waits for Run to return.
func (h *harness) run(p Params) (*Dispatcher, func()) {
	h.t.Helper()
	d := New(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var stopped atomic.Bool
	stop := func() {
		h.t.Helper()
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Fatalf("Run did not return after its context was cancelled")
		}
	}
	h.t.Cleanup(stop)
	return d, stop
}

func (h *harness) depth() store.Depth {
	h.t.Helper()
	d, err := h.store.Depth(context.Background(), time.Now())
	if err != nil {
		h.t.Fatalf("depth: %v", err)
	}
	return d
}

// waitFor polls cond until it holds, or fails the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hole is a receiver that accepts requests and answers none until released.
func hole(t *testing.T) *hooktest.Receiver { return hooktest.New(t, hooktest.BlackHole()) }

// deliveryIDs are the X-Regwebhook-Delivery headers of the requests.
func deliveryIDs(reqs []hooktest.Request) []string {
	var ids []string
	for _, r := range reqs {
		ids = append(ids, r.Header.Get(HeaderDelivery))
	}
	return ids
}

func TestDeliverRetriesUntilSuccess(t *testing.T) {
	rc := hooktest.New(t, hooktest.Statuses(503, 503, 200))
	h := newHarness(t, webhook("hookretry", rc.URL()))
	ids := h.enqueue("hookretry", 1)
	reg := prometheus.NewRegistry()
	p := h.params(time.Minute)
	p.Registerer = reg
	h.run(p)

	waitFor(t, "the job to be delivered", func() bool { return h.depth() == store.Depth{} })
	entries, err := h.store.History(context.Background(), "hookretry", 10)
	if err != nil {
		t.Fatal(err)
	}
	type attempt struct {
		ID      string
		Attempt int
		Status  int
	}
	var got []attempt
	for _, e := range entries {
		a := attempt{ID: e.ID, Attempt: e.Attempt}
		if e.Response != nil {
			a.Status = e.Response.StatusCode
		}
		got = append(got, a)
	}
	want := []attempt{{ids[0], 3, 200}, {ids[0], 2, 503}, {ids[0], 1, 503}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history, newest first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ids[0], ids[0], ids[0]}, deliveryIDs(rc.Requests())); diff != "" {
		t.Errorf("delivery ids received: the same on every attempt (-want +got):\n%s", diff)
	}

	counts := map[string]float64{}
	var observed uint64
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "regwebhook_deliveries_total":
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				counts[labels["webhook"]+"/"+labels["outcome"]] = m.GetCounter().GetValue()
			case "regwebhook_delivery_duration_seconds":
				observed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if diff := cmp.Diff(map[string]float64{"hookretry/ok": 1, "hookretry/status_5xx": 2}, counts); diff != "" {
		t.Errorf("deliveries counter (-want +got):\n%s", diff)
	}
	if observed != 3 {
		t.Errorf("latency histogram has %d observations, want 3", observed)
	}
}

func TestDeliverDeadLetters(t *testing.T) {
	rc := hooktest.New(t, hooktest.Statuses(500))
	h := newHarness(t, webhook("hookdead", rc.URL()))
	ids := h.enqueue("hookdead", 1)
	p := h.params(time.Minute)
	p.Retry.MaxAttempts = 3
	h.run(p)

	waitFor(t, "the job to be dead", func() bool { return h.depth() == store.Depth{Dead: 1} })
	dead, err := h.store.DeadLetters(context.Background(), "hookdead")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("got %d dead letters, want 1", len(dead))
	}
	got := []any{dead[0].ID, dead[0].Attempts, dead[0].Error}
	want := []any{ids[0], 3, "answered 500 Internal Server Error"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letter id, attempts, error (-want +got):\n%s", diff)
	}
	entries, err := h.store.History(context.Background(), "hookdead", 10)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, e := range entries {
		statuses = append(statuses, e.Response.StatusCode)
	}
	if diff := cmp.Diff([]int{500, 500, 500}, statuses); diff != "" {
		t.Errorf("history statuses (-want +got):\n%s", diff)
	}
	if n := rc.Count(); n != 3 {
		t.Errorf("receiver got %d requests, want 3 (MaxAttempts)", n)
	}
}

func TestDeliverGivesUpAtOnce(t *testing.T) {
	bad := webhook("hookbad", "http://127.0.0.1:1/hook")
	bad.Secret = "whsec_tooshort"
	h := newHarness(t, bad)
	h.enqueue("hookbad", 1)
	h.run(h.params(time.Minute)) // MaxAttempts 10

	waitFor(t, "the job to be dead", func() bool { return h.depth() == store.Depth{Dead: 1} })
	dead, err := h.store.DeadLetters(context.Background(), "hookbad")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Attempts != 1 || !strings.Contains(dead[0].Error, "secret") {
		t.Errorf("dead letters %+v, want one after 1 attempt, its error naming the secret", dead)
	}
}

// TestShutdown: Run waits for requests in flight up to the grace, then cuts
// them and puts their jobs back, their attempts not counted.
func TestShutdown(t *testing.T) {
	t.Run("grace runs out", func(t *testing.T) {
		var hooks []*rule.Webhook
		var holes []*hooktest.Receiver
		for i := range 3 {
			rc := hole(t)
			holes = append(holes, rc)
			hooks = append(hooks, webhook(fmt.Sprintf("hookslow%d", i), rc.URL()))
		}
		h := newHarness(t, hooks...)
		for _, w := range hooks {
			h.enqueue(w.ID, 1)
		}
		p := h.params(time.Minute)
		p.ShutdownGrace = 50 * time.Millisecond
		_, stop := h.run(p)
		waitFor(t, "a request in flight to each webhook", func() bool {
			for _, rc := range holes {
				if rc.InFlight() != 1 {
					return false
				}
			}
			return true
		})
		stop()

		if diff := cmp.Diff(store.Depth{Ready: 3}, h.depth()); diff != "" {
			t.Errorf("queue after shutdown (-want +got):\n%s", diff)
		}
		want := map[string]int{}
		for _, w := range hooks {
			want[w.ID] = 1
		}
		res, err := h.store.Lease(context.Background(), store.LeaseRequest{Now: time.Now(), For: time.Minute, Want: want})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, l := range res.Leases {
			got[l.WebhookID] = l.Attempts
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("attempts when leased again: the cut one not counted (-want +got):\n%s", diff)
		}
		for _, w := range hooks {
			if entries, _ := h.store.History(context.Background(), w.ID, 10); len(entries) != 0 {
				t.Errorf("webhook %s has %d history entries, want none: a cut request is no attempt", w.ID, len(entries))
			}
		}
	})
	t.Run("requests end within the grace", func(t *testing.T) {
		rc := hole(t)
		h := newHarness(t, webhook("hookgrace", rc.URL()))
		h.enqueue("hookgrace", 1)
		p := h.params(time.Minute)
		p.ShutdownGrace = time.Minute
		d, _ := h.run(p)
		waitFor(t, "the request in flight", func() bool { return rc.InFlight() == 1 })

		closed := make(chan struct{})
		go func() { d.Close(); close(closed) }()
		rc.Release()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not return once the request ended")
		}
		d.Close() // safe twice
		if diff := cmp.Diff(store.Depth{}, h.depth()); diff != "" {
			t.Errorf("queue after shutdown: the request that ended in the grace is acknowledged (-want +got):\n%s", diff)
		}
		if err := d.Run(context.Background()); err == nil {
			t.Errorf("Run after Close returned nil, want an error")
		}
	})
}

// TestLeaseLost: a worker whose lease was reclaimed while its request ran
// gets ErrLeaseLost from Ack; the Dispatcher shrugs and delivers the job
// again under its new lease.
func TestLeaseLost(t *testing.T) {
	rc := hole(t)
	h := newHarness(t, webhook("hooklost", rc.URL()))
	ids := h.enqueue("hooklost", 1)
	p := h.params(time.Minute)
	p.Lease = 100 * time.Millisecond
	p.MaintainEvery = 10 * time.Millisecond
	h.run(p)

	waitFor(t, "the first request", func() bool { return rc.InFlight() == 1 })
	// The lease runs out and Maintain puts the job back; the webhook, not yet
	// proven, gets no second request while the first is in flight.
	waitFor(t, "the lease to be reclaimed", func() bool { return h.depth() == store.Depth{Ready: 1} })
	rc.Release()
	waitFor(t, "the job to be delivered again", func() bool { return h.depth() == store.Depth{} })

	if diff := cmp.Diff([]string{ids[0], ids[0]}, deliveryIDs(rc.Requests())); diff != "" {
		t.Errorf("deliveries received (-want +got):\n%s", diff)
	}
	entries, err := h.store.History(context.Background(), "hooklost", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Attempt != 2 {
		t.Errorf("history %+v, want one entry of attempt 2 (the lost lease records nothing)", entries)
	}
	var lost bool
	for _, e := range h.logs.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			t.Errorf("logged at %s: %s %v", e.Level, e.Message, e.Data)
		}
		if err, ok := e.Data[logrus.ErrorKey].(error); ok && e.Level == logrus.DebugLevel && errors.Is(err, store.ErrLeaseLost) {
			lost = true
		}
	}
	if !lost {
		t.Errorf("the lost lease was not logged at debug")
	}
}

// TestStoreErrorsDoNotStopRun: with its store gone, the Dispatcher logs,
// backs off and keeps running until it is stopped.
func TestStoreErrorsDoNotStopRun(t *testing.T) {
	rc := hooktest.New(t)
	h := newHarness(t, webhook("hookstore", rc.URL()))
	p := h.params(time.Minute)
	p.PollEvery = 10 * time.Millisecond
	p.MaintainEvery = 10 * time.Millisecond
	_, stop := h.run(p)
	h.store.Close()

	warned := func(msg string) bool {
		for _, e := range h.logs.AllEntries() {
			if e.Level == logrus.WarnLevel && strings.Contains(e.Message, msg) {
				return true
			}
		}
		return false
	}
	waitFor(t, "lease and maintenance failures to be logged", func() bool {
		return warned("lease failed") && warned("maintenance failed")
	})
	stop() // fails the test if Run does not return, or returns an error
}

// TestDisabledWebhookHeld: a disabled webhook's jobs wait in the queue, and
// go once it is enabled again; Wake finds new jobs without a poll.
func TestDisabledWebhookHeld(t *testing.T) {
	off, on := hooktest.New(t), hooktest.New(t)
	disabled := webhook("hookoff", off.URL())
	disabled.Status = rule.Disabled
	enabled := webhook("hookon", on.URL())
	h := newHarness(t, disabled, enabled)
	h.enqueue("hookoff", 1)
	h.enqueue("hookon", 1)
	p := h.params(time.Minute)
	p.PollEvery = time.Hour // only Wake and changes of the webhooks find new jobs
	d, _ := h.run(p)

	waitFor(t, "the enabled webhook's delivery", func() bool { return h.depth() == store.Depth{Ready: 1} })
	if n := off.Count(); n != 0 {
		t.Errorf("the disabled webhook got %d requests, want 0", n)
	}

	h.enqueue("hookon", 1)
	d.Wake("hookon")
	waitFor(t, "a woken webhook's delivery", func() bool { return on.Count() == 2 })

	reenabled := *disabled
	reenabled.Status = rule.Enabled
	h.setHooks(&reenabled, enabled)
	waitFor(t, "the job held for the disabled webhook", func() bool { return h.depth() == store.Depth{} })
	if n := off.Count(); n != 1 {
		t.Errorf("the re-enabled webhook got %d requests, want 1", n)
	}
}

// Jobs of webhooks far down the list are found without waiting for a poll:
// with many webhooks marked as maybe having jobs (at start, after a poll)
// and few of them with any, the dispatcher asks round after round until it
// has asked them all, not a few rounds and then nothing until the next
// event.
func TestManyWebhooksFewWithJobs(t *testing.T) {
	r := hooktest.New(t)
	var hooks []*rule.Webhook
	for i := range 200 {
		hooks = append(hooks, webhook(fmt.Sprintf("hook%03d", i), r.URL()))
	}
	h := newHarness(t, hooks...)
	for i := 190; i < 200; i++ {
		h.enqueue(fmt.Sprintf("hook%03d", i), 1)
	}
	p := h.params(time.Minute)
	p.PollEvery = time.Hour // only the start marks the webhooks
	p.MaintainEvery = time.Hour
	h.run(p)
	waitFor(t, "the jobs of the last 10 of 200 webhooks, 8 workers", func() bool { return r.Count() == 10 })
}
