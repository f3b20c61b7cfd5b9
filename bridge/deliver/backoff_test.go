package deliver

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		name    string
		initial time.Duration
		max     time.Duration
		attempt int
		rand    float64
		want    time.Duration
	}{
		{name: "first attempt, top of range", initial: time.Second, max: time.Hour, attempt: 1, rand: 0.5, want: 500 * time.Millisecond},
		{name: "second attempt doubles", initial: time.Second, max: time.Hour, attempt: 2, rand: 0.5, want: time.Second},
		{name: "fifth attempt", initial: time.Second, max: time.Hour, attempt: 5, rand: 0.25, want: 4 * time.Second},
		{name: "full jitter can be zero", initial: time.Second, max: time.Hour, attempt: 5, rand: 0, want: 0},
		{name: "capped at max", initial: time.Second, max: time.Hour, attempt: 13, rand: 0.5, want: 30 * time.Minute},
		{name: "attempt 60 does not overflow", initial: time.Second, max: time.Hour, attempt: 60, rand: 0.5, want: 30 * time.Minute},
		{name: "attempt 1000 does not overflow", initial: time.Nanosecond, max: time.Duration(1<<63 - 1), attempt: 1000, rand: 0.5,
			want: time.Duration(float64(time.Duration(1<<63-1)) * 0.5)},
		{name: "attempt 0 counts as 1", initial: time.Second, max: time.Hour, attempt: 0, rand: 0.5, want: 500 * time.Millisecond},
		{name: "initial above max is max", initial: time.Hour, max: time.Minute, attempt: 1, rand: 0.5, want: 30 * time.Second},
		{name: "a bad rand counts as 0", initial: time.Second, max: time.Hour, attempt: 1, rand: 1.5, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Backoff{Initial: tt.initial, Max: tt.max, Rand: func() float64 { return tt.rand }}
			if diff := cmp.Diff(tt.want, b.Delay(tt.attempt)); diff != "" {
				t.Errorf("Delay(%d) (-want +got):\n%s", tt.attempt, diff)
			}
		})
	}
}

func TestBackoffCeilingGrowsToMax(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Minute}
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, b.Ceiling(n))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ceilings (-want +got):\n%s", diff)
	}
}
