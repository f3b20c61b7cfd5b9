package deliver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// gauges returns the values of a gauge vector with one label, by label
// value, as the registry would export them.
func gauges(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
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
			out[label] = m.GetGauge().GetValue()
		}
	}
	return out
}

// flaky is a receiver that answers 500 until fixed, then 200, and notes
// when it got its first request.
type flaky struct {
	srv    *httptest.Server
	broken atomic.Bool
	mu     sync.Mutex
	first  time.Time
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	f.broken.Store(true)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		if f.first.IsZero() {
			f.first = time.Now()
		}
		f.mu.Unlock()
		if f.broken.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flaky) firstRequest() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

// A webhook whose last attempt failed shows regwebhook_webhook_failing 1,
// and since when (the start of the first failed attempt of the run); after
// a success it shows 0 and no since. A webhook that only succeeded shows 0.
// A deleted webhook's series go.
func TestFailingGauges(t *testing.T) {
	flak := newFlaky(t)
	fine := hooktest.New(t)
	h := newHarness(t, webhook("hookflaky", flak.srv.URL), webhook("hookfine", fine.URL()))
	reg := prometheus.NewRegistry()
	p := h.params(time.Minute)
	p.Registerer = reg
	d, _ := h.run(p)
	failing := func() map[string]float64 { return gauges(t, reg, "regwebhook_webhook_failing") }
	since := func() map[string]float64 { return gauges(t, reg, "regwebhook_webhook_failing_since_seconds") }
	if got := failing(); len(got) != 0 {
		t.Errorf("before any attempt: failing %v, want no series", got)
	}

	before := time.Now()
	h.enqueue("hookflaky", 1)
	h.enqueue("hookfine", 1)
	d.Wake()
	waitFor(t, "hookflaky failing and hookfine not", func() bool {
		got := failing()
		return got["hookflaky"] == 1 && len(got) == 2
	})
	if diff := cmp.Diff(map[string]float64{"hookflaky": 1, "hookfine": 0}, failing()); diff != "" {
		t.Errorf("failing (-want +got):\n%s", diff)
	}
	s := since()
	if len(s) != 1 {
		t.Fatalf("failing since: %v, want hookflaky's alone", s)
	}
	at := time.Unix(0, int64(s["hookflaky"]*1e9))
	if first := flak.firstRequest(); at.Before(before.Add(-time.Millisecond)) || at.After(first.Add(time.Millisecond)) {
		t.Errorf("failing since %v, want the start of the first attempt: between %v and its arrival %v", at, before, first)
	}

	// Fixed: the next delivery succeeds.
	flak.broken.Store(false)
	h.enqueue("hookflaky", 1)
	d.Wake("hookflaky")
	waitFor(t, "hookflaky recovered", func() bool { return failing()["hookflaky"] == 0 && len(since()) == 0 })

	// Deleted: its series go; the other's stay.
	h.setHooks(webhook("hookfine", fine.URL()))
	d.Wake()
	waitFor(t, "hookflaky's series gone", func() bool {
		_, ok := failing()["hookflaky"]
		return !ok
	})
	if diff := cmp.Diff(map[string]float64{"hookfine": 0}, failing()); diff != "" {
		t.Errorf("failing after the delete (-want +got):\n%s", diff)
	}
}
