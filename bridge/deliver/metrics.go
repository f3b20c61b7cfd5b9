package deliver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// metrics of deliveries: attempts by webhook and outcome reason, and how
// long they took.
type metrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, log logrus.FieldLogger) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regwebhook_deliveries_total",
			Help: "Delivery attempts by webhook name and outcome (ok, status_5xx, timeout, ...).",
		}, []string{"webhook", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regwebhook_delivery_duration_seconds",
			Help:    "Time from sending a delivery request to reading its response.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	if reg == nil {
		return m
	}
	m.deliveries = register(reg, log, m.deliveries)
	m.latency = register(reg, log, m.latency)
	return m
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
