package receive_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/regwebhook/regwebhook/bridge/receive"
)

// A delivery's id is the version 5 UUID of its event and webhook ids that
// it has always been: jobs queued before an upgrade keep the ids their
// event's redelivery would give them, so the event is not delivered twice.
func TestDeliveryIDIsTheNameBasedUUIDOfEventAndWebhook(t *testing.T) {
	ns := uuid.MustParse("6f1c1d4e-6a34-4d39-9a39-5a4d0f3b7e21")
	for _, c := range []struct{ event, webhook string }{
		{"", ""},
		{"8b4b6a3e-0c1f-4c39-9d1e-5b0e3f9a2c71", "wh-1"},
		{"ev", strings.Repeat("w", 300)}, // longer than the buffer on the stack
		{"é\x00☃", "x"},
	} {
		want := uuid.NewSHA1(ns, []byte(c.event+"\x00"+c.webhook)).String()
		if got := receive.DeliveryID(c.event, c.webhook); got != want {
			t.Errorf("DeliveryID(%q, %q) = %s, want %s", c.event, c.webhook, got, want)
		}
	}
	if receive.DeliveryID("a", "bc") == receive.DeliveryID("ab", "c") {
		t.Error("two pairs of ids that run together give one delivery id")
	}
}
