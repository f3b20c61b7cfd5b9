// Package gogc sets the garbage collector's target for a long-running
// process of regwebhook's kind: one that keeps little and allocates fast.
package gogc

import "runtime/debug"

// Server is the GOGC that regwebhook serve runs with when the environment
// sets none: a collection once the heap has grown by four times what the
// last one kept, not once it has doubled. regwebhook keeps little (webhooks,
// the jobs in hand) and allocates fast (an envelope, its payloads, its
// requests): at Go's default of 100 the collector ran every few
// milliseconds under load and took about a fifth of the process's CPU; at
// 400 the process spends about a sixth less per envelope, and draining a
// backlog of 1,000,000 deliveries it peaked at 104 MB resident against the
// 150 MB the benchmarks allow (docs/benchmarks-history.md, "Seventh round"). The
// load command's floor runs with it too, so that neither side of a ratio
// owes its figure to the collector's setting.
const Server = 400

// Set sets Server unless the environment (getenv) sets GOGC: Go's own
// GOGC, and GOMEMLIMIT, win.
func Set(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(Server)
	}
}
