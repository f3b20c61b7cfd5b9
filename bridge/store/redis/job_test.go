package redis

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// A job's string reads back as the job it was made of, and jobLen, which
// sizes an inbox entry before its jobs are written into it, is its length.
func TestJobStringsReadBackAndAreSizedBeforehand(t *testing.T) {
	now := time.Unix(1_790_000_000, 123456789)
	long := strings.Repeat("w", 1234)
	jobs := map[string]store.Job{
		"a registry's push": {ID: "d1", WebhookID: "wh-1", EventID: "ev-1", Action: "push", ContentType: "application/json",
			Created: now, Due: now, Attempts: 0, Payload: `{"id":"ev-1","action":"push"}`},
		"a redelivery, retried": {ID: "d2", WebhookID: "wh-2", EventID: "ev-2", Action: "delete", Redelivery: true,
			Created: now, Due: now.Add(time.Hour), Attempts: 10, Payload: "x"},
		"no times, no payload": {ID: "d3", WebhookID: "wh-3", EventID: "ev-3", Action: "push", Attempts: 9},
		"times before 1970":    {ID: "d4", WebhookID: "wh-4", Created: time.Unix(-5, 0), Due: time.Unix(0, math.MinInt64)},
		"long fields": {ID: "d5", WebhookID: long, EventID: long, Action: "push", ContentType: long,
			Created: now, Due: now, Attempts: math.MaxInt32, Payload: strings.Repeat("p", 100_000)},
	}
	for name, j := range jobs {
		s := encodeJob(j)
		if n := jobLen(j); n != len(s) {
			t.Errorf("%s: jobLen %d, encoded %d bytes", name, n, len(s))
		}
		got, err := decodeJob(j.ID, s)
		if err != nil {
			t.Errorf("%s: decode: %v", name, err)
			continue
		}
		if diff := cmp.Diff(j, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("%s: read back (-made +read):\n%s", name, diff)
		}
	}
}
