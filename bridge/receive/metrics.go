package receive

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count what the receiver took and refused.
type metrics struct {
	received *prometheus.CounterVec // events kept, by action
	dropped  *prometheus.CounterVec // events dropped, by reason
	rejected *prometheus.CounterVec // envelopes refused, by error code
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regwebhook_events_received_total",
			Help: "Registry events kept, by action.",
		}, []string{"action"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regwebhook_events_dropped_total",
			Help: "Registry events dropped, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regwebhook_envelopes_rejected_total",
			Help: "Notification requests refused, by error code.",
		}, []string{"code"}),
	}
	// Refusals start at 0, so that an alert on increase() sees the first one
	// (a registry with the wrong token, a store that is down).
	for _, code := range []string{"unauthorized", "unavailable", "unsupported_media_type", "too_large", "invalid", "method_not_allowed"} {
		m.rejected.WithLabelValues(code)
	}
	if reg != nil {
		reg.MustRegister(m.received, m.dropped, m.rejected)
	}
	return m
}

func (m *metrics) count(r result) {
	for a, n := range r.received {
		m.received.WithLabelValues(string(a)).Add(float64(n))
	}
	for reason, n := range r.drops {
		m.dropped.WithLabelValues(string(reason)).Add(float64(n))
	}
}
