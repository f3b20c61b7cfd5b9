package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// depthCollector reports the queue's depth by state, read from the store at
// each scrape; with a shared store every replica reports the same queue.
type depthCollector struct {
	store interface {
		Depth(ctx context.Context, now time.Time) (store.Depth, error)
	}
	depth *prometheus.Desc
	up    *prometheus.Desc
	// errors is the shared store-error counter; a failed count is op "depth".
	errors *prometheus.CounterVec
}

func newDepthCollector(s store.Store, storeErrors *prometheus.CounterVec) *depthCollector {
	return &depthCollector{
		store: s,
		depth: prometheus.NewDesc("regwebhook_queue_jobs",
			"Jobs in the queue by state: ready (due), delayed (waiting for a retry), leased (being delivered), dead (dead letters).",
			[]string{"state"}, nil),
		up: prometheus.NewDesc("regwebhook_store_up",
			"1 when the store answered at this scrape (it counted the queue), 0 when it did not: /readyz answers 503 then.",
			nil, nil),
		errors: storeErrors,
	}
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.up
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := c.store.Depth(ctx, time.Now())
	if err != nil {
		c.errors.WithLabelValues("depth").Inc()
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for state, n := range map[string]int{"ready": d.Ready, "delayed": d.Delayed, "leased": d.Leased, "dead": d.Dead} {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), state)
	}
}

// newStoreErrors returns the one counter of failed store calls by op, for
// the server to register once and hand to the receiver, the dispatcher and
// the depth collector. The ops: the receiver's commit of an envelope
// (ingest, answered 503), the delivery workers' calls (lease, ack, fail,
// release; a lost lease is not an error), queue maintenance (maintain) and
// the queue count at a scrape (depth). Each starts at 0 so that an alert on
// increase() sees the first error.
func newStoreErrors() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regwebhook_store_errors_total",
		Help: "Failed store calls by operation: ingest (an envelope answered 503), lease, ack, fail, release, maintain, depth.",
	}, []string{"op"})
	for _, op := range []string{"ingest", "lease", "ack", "fail", "release", "maintain", "depth"} {
		c.WithLabelValues(op)
	}
	return c
}
