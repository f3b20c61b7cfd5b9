// Command regwebhook-load measures a running regwebhook against the floor:
// the cheapest program that does the same job on the same store.
//
//	regwebhook-load run        envelopes in, deliveries out, latency; then the floor, and the ratios
//	regwebhook-load floor      the floor itself (run starts it)
//	regwebhook-load backlog    1,000,000 queued deliveries drained by a regwebhook serve it starts; its RSS
//	regwebhook-load isolation  healthy webhooks' throughput with webhooks whose URIs never answer
//	regwebhook-load spin       takes a share of one core, as a neighbour on a shared machine would
//
// It is a program of its own rather than a subcommand of regwebhook: it
// carries a load generator, receivers and a second server (the floor) that
// have no place in the binary users deploy, and it must run beside the
// regwebhook it measures, as a separate process, so that the two do not
// share a Go runtime (scheduler, garbage collector). docs/benchmarks.md has
// the figures it produced and the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// errUsage marks a command line that cannot run; it exits with status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "regwebhook-load",
		Short:         "Measure a running regwebhook against the floor",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newFloorCmd(), newBacklogCmd(), newIsolationCmd(), newSpinCmd())
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "regwebhook-load:", err)
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}
