package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// spinPeriod is the period spin works in: it spins for its share of each,
// and sleeps the rest. Short enough that what it takes is spread as a
// neighbour's work is, not in bursts the length of a round.
const spinPeriod = 10 * time.Millisecond

func newSpinCmd() *cobra.Command {
	var share float64
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "spin",
		Short: "Take a share of one core, as a neighbour on a shared machine would",
		Long: `spin spins for --share of every 10 ms and sleeps the rest, until
--duration has passed (0: until interrupted). Run it beside regwebhook and
the load command to see how both behave on a machine whose other tenants
take some of its CPU; run several for more than one core. The tenth round
(docs/benchmarks-history.md) used --share 0.2 and 0.3.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !(share > 0 && share <= 1) {
				return fmt.Errorf("%w: --share %v is not in (0, 1]", errUsage, share)
			}
			if duration < 0 {
				return fmt.Errorf("%w: --duration %v is negative", errUsage, duration)
			}
			ctx := cmd.Context()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			spin(ctx, share)
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&share, "share", 0.2, "the share of one core to take, in (0, 1]")
	f.DurationVar(&duration, "duration", 0, "how long to spin (0: until interrupted)")
	return cmd
}

// spin takes share of one core until ctx is done.
func spin(ctx context.Context, share float64) {
	busy := time.Duration(float64(spinPeriod) * share)
	for ctx.Err() == nil {
		start := time.Now()
		for time.Since(start) < busy {
		}
		if rest := spinPeriod - time.Since(start); rest > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(rest):
			}
		}
	}
}
