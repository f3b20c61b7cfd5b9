package deliver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// metrics of deliveries: attempts by webhook and outcome reason, how long
// they took, the jobs that went to dead letters, and failed store calls.
type metrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	dead       *prometheus.CounterVec
	handed     prometheus.Counter
	// workers is delivery.workers, so that the requests in flight, which
	// rate(regwebhook_delivery_duration_seconds_sum) gives, can be read as
	// a share of them.
	workers prometheus.Gauge
	// failing and failingSince show the webhooks whose last attempt in
	// this process failed, by name: 1 and the start of the run's first
	// failed attempt; 0 and no since after a success. A deleted webhook's
	// series are removed.
	failing      *prometheus.GaugeVec
	failingSince *prometheus.GaugeVec
	// storeErrors is registered by whoever passed it (Params.StoreErrors);
	// nil: not counted.
	storeErrors *prometheus.CounterVec
}

// Causes of a job's move to the dead letters, the label of
// regwebhook_dead_letters_total.
const (
	deadFailed  = "failed"  // its last attempt failed, and no attempts or age were left
	deadExpired = "expired" // it waited in the queue past delivery.retry.maxage
)

func newMetrics(reg prometheus.Registerer, log logrus.FieldLogger, storeErrors *prometheus.CounterVec, workers int) *metrics {
	m := &metrics{
		storeErrors: storeErrors,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regwebhook_deliveries_total",
			Help: "Delivery attempts by webhook name and outcome (ok, status_5xx, timeout, ...).",
		}, []string{"webhook", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regwebhook_delivery_duration_seconds",
			Help:    "Time from sending a delivery request to reading its response.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regwebhook_dead_letters_total",
			Help: "Jobs moved to dead letters by cause: failed (out of attempts or age after a failed attempt), expired (waited in the queue past maxage).",
		}, []string{"cause"}),
		handed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regwebhook_handoffs_total",
			Help: "Jobs the receiver committed leased to this process and handed to its workers, without a lease call.",
		}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regwebhook_delivery_workers",
			Help: "Requests this process makes at once at most (delivery.workers).",
		}),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regwebhook_webhook_failing",
			Help: "1 while the last delivery attempt to the webhook in this process failed, 0 after a success; absent before its first attempt here.",
		}, []string{"webhook"}),
		failingSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regwebhook_webhook_failing_since_seconds",
			Help: "Unix time of the first failed attempt of the webhook's current run of failures, as this process saw it; absent while it is not failing.",
		}, []string{"webhook"}),
	}
	if reg == nil {
		return m
	}
	m.deliveries = register(reg, log, m.deliveries)
	m.latency = register(reg, log, m.latency)
	m.dead = register(reg, log, m.dead)
	m.handed = register(reg, log, m.handed)
	m.workers = register(reg, log, m.workers)
	// Set once registered: a gauge another Dispatcher registered first
	// is the one exported.
	m.workers.Set(float64(workers))
	m.failing = register(reg, log, m.failing)
	m.failingSince = register(reg, log, m.failingSince)
	// Both causes start at 0, so that an alert on increase() sees the first.
	m.dead.WithLabelValues(deadFailed)
	m.dead.WithLabelValues(deadExpired)
	return m
}

// storeError counts a failed store call.
func (m *metrics) storeError(op string) {
	if m.storeErrors != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// register registers c, or returns the collector already registered under
// its name (a second Dispatcher on the same registry shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, log logrus.FieldLogger, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.WithError(err).Warn("deliver: metric not registered")
	return c
}
