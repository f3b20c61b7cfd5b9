package receive_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// An envelope the store could not commit is counted as a store error of op
// "ingest" (in the counter shared with the rest of the server) and as a
// refusal; one committed is neither. Refusal codes are exported at 0 before
// the first, so that alerts see the first one.
func TestStoreErrorCounted(t *testing.T) {
	e := newEnv(t, "")
	storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regwebhook_store_errors_total"}, []string{"op"})
	e.reg = prometheus.NewRegistry()
	e.reg.MustRegister(storeErrors)
	log, _ := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	e.h = receive.New(receive.Params{
		Store:        e.store,
		Hooks:        func() *rule.Set { return e.hooks },
		MaxBodyBytes: 1 << 20,
		DedupeTTL:    time.Hour,
		Log:          log,
		Registerer:   e.reg,
		StoreErrors:  storeErrors,
	})
	zero := map[string]int{"unauthorized": 0, "unavailable": 0, "unsupported_media_type": 0, "too_large": 0, "invalid": 0, "method_not_allowed": 0}
	if diff := cmp.Diff(zero, e.counts("regwebhook_envelopes_rejected_total")); diff != "" {
		t.Errorf("refusals before any request (-want +got):\n%s", diff)
	}

	e.postOK(pushBody(t, "ev-ok"), nil, 1, 0)
	if got := e.counts("regwebhook_store_errors_total"); len(got) != 0 {
		t.Errorf("store errors after a committed envelope: %v, want none", got)
	}

	e.store.Close()
	if w := e.post(pushBody(t, "ev-lost"), nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("closed store: %d %s, want 503", w.Code, w.Body)
	}
	if diff := cmp.Diff(map[string]int{"ingest": 1}, e.counts("regwebhook_store_errors_total")); diff != "" {
		t.Errorf("store errors (-want +got):\n%s", diff)
	}
	if n := e.counts("regwebhook_envelopes_rejected_total")["unavailable"]; n != 1 {
		t.Errorf("refused as unavailable: %d, want 1", n)
	}
}
