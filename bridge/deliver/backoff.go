package deliver

import "time"

// Backoff is exponential backoff with full jitter: the delay before the retry
// that follows attempt n is drawn uniformly from [0, min(Max, Initial·2^(n-1))).
// Full jitter spreads the retries of many jobs that failed together (a
// webhook that was down) instead of bringing them back in one burst.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	// Rand returns a number in [0, 1). It is called once per Delay; the caller
	// makes it safe for the goroutines that call Delay.
	Rand func() float64
}

// Ceiling is the upper bound of the delay after attempt n (n ≥ 1; a smaller n
// counts as 1). It does not overflow for any n.
func (b Backoff) Ceiling(n int) time.Duration {
	if b.Initial <= 0 || b.Max <= 0 {
		return 0
	}
	d := min(b.Initial, b.Max)
	for i := 1; i < n && d < b.Max; i++ {
		if d > b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return d
}

// Delay is how long to wait before retrying after attempt n.
func (b Backoff) Delay(n int) time.Duration {
	c := b.Ceiling(n)
	if c <= 0 {
		return 0
	}
	r := b.Rand()
	if r < 0 || r >= 1 {
		r = 0
	}
	return time.Duration(r * float64(c))
}
