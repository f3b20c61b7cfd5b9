package deliver

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// counts returns the values of a counter vector with one label, by label
// value, as the registry would export them.
func counts(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			if ls := m.GetLabel(); len(ls) > 0 {
				label = ls[0].GetValue()
			}
			out[label] = m.GetCounter().GetValue()
		}
	}
	return out
}

// A job out of attempts and a job that waited past maxage are both counted
// as dead letters, each with its cause; both causes are exported from the
// start.
func TestDeadLettersCounted(t *testing.T) {
	t.Run("out of attempts", func(t *testing.T) {
		rc := hooktest.New(t, hooktest.Statuses(500))
		h := newHarness(t, webhook("hookfails", rc.URL()))
		reg := prometheus.NewRegistry()
		p := h.params(time.Minute)
		p.Registerer = reg
		p.Retry.MaxAttempts = 2
		d, _ := h.run(p)
		if diff := cmp.Diff(map[string]float64{"failed": 0, "expired": 0}, counts(t, reg, "regwebhook_dead_letters_total")); diff != "" {
			t.Errorf("before any job (-want +got):\n%s", diff)
		}
		h.enqueue("hookfails", 1)
		d.Wake("hookfails")

		waitFor(t, "the job to be dead", func() bool { return h.depth() == store.Depth{Dead: 1} })
		// The worker counts the dead letter once the store's Fail has
		// returned, a moment after the store shows it.
		waitFor(t, "the dead letter to be counted", func() bool {
			return counts(t, reg, "regwebhook_dead_letters_total")["failed"] == 1
		})
		if n := counts(t, reg, "regwebhook_dead_letters_total")["expired"]; n != 0 {
			t.Errorf("expired dead letters: %v, want 0", n)
		}
	})
	t.Run("past maxage while held", func(t *testing.T) {
		held := webhook("hookheld", "http://127.0.0.1:1/never")
		held.Status = rule.Disabled
		h := newHarness(t, held)
		reg := prometheus.NewRegistry()
		p := h.params(time.Minute)
		p.Registerer = reg
		p.Retry.MaxAge = 20 * time.Millisecond
		p.MaintainEvery = 10 * time.Millisecond
		h.enqueue("hookheld", 1)
		h.run(p)

		waitFor(t, "the held job to expire", func() bool { return h.depth() == store.Depth{Dead: 1} })
		waitFor(t, "the expiry to be counted", func() bool {
			return counts(t, reg, "regwebhook_dead_letters_total")["expired"] == 1
		})
		if n := counts(t, reg, "regwebhook_dead_letters_total")["failed"]; n != 0 {
			t.Errorf("failed dead letters: %v, want 0", n)
		}
	})
}

// With its store gone, the Dispatcher counts each failed store call by op
// in the counter it was given.
func TestStoreErrorsCounted(t *testing.T) {
	rc := hooktest.New(t)
	h := newHarness(t, webhook("hookstore", rc.URL()))
	storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regwebhook_store_errors_total"}, []string{"op"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(storeErrors)
	p := h.params(time.Minute)
	p.StoreErrors = storeErrors
	p.PollEvery = 10 * time.Millisecond
	p.MaintainEvery = 10 * time.Millisecond
	h.run(p)
	if got := counts(t, reg, "regwebhook_store_errors_total"); len(got) != 0 {
		t.Errorf("store errors with the store up: %v, want none", got)
	}
	h.store.Close()

	waitFor(t, "failed leases and maintenance to be counted", func() bool {
		c := counts(t, reg, "regwebhook_store_errors_total")
		return c["lease"] > 0 && c["maintain"] > 0
	})
}
