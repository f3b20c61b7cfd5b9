package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// isolationOpts configure isolation.
type isolationOpts struct {
	target     string
	token      string
	adminToken string
	webhooks   int
	dead       []int
	envelopes  int
	conns      int
	idle       time.Duration
	settle     time.Duration
}

func newIsolationCmd() *cobra.Command {
	var o isolationOpts
	cmd := &cobra.Command{
		Use:   "isolation",
		Short: "Measure healthy webhooks' throughput beside webhooks whose URIs never answer",
		Long: `isolation measures the deliveries per second of healthy webhooks, all
taking every event of a round, against the running regwebhook:

  all healthy  --webhooks webhooks, all answering at once;
  d dead       the same number, d of them pointing at a URI that accepts
               connections and never answers (regwebhook's
               delivery.timeout ends each request), for each d of --dead.

Throughput is per healthy webhook: deliveries per second over the number
of healthy webhooks. "kept" is a round's over the all-healthy round's: the
share of their throughput the healthy webhooks keep beside dead ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIsolation(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "http://127.0.0.1:5080", "the running regwebhook")
	f.StringVar(&o.token, "token", "", "regwebhook's receiver.token")
	f.StringVar(&o.adminToken, "admin-token", "", "regwebhook's admin.token")
	f.IntVar(&o.webhooks, "webhooks", 10, "webhooks in each round with dead ones (at most 32)")
	f.IntSliceVar(&o.dead, "dead", []int{1, 5}, "how many of them never answer, one measurement each")
	f.IntVar(&o.envelopes, "envelopes", 3000, "envelopes posted in each round")
	f.IntVar(&o.conns, "conns", 8, "connections posting at once")
	f.DurationVar(&o.idle, "idle", 30*time.Second, "stop waiting for deliveries when none came for this long")
	f.DurationVar(&o.settle, "settle", time.Second, "wait after making webhooks, for every replica to have them")
	return cmd
}

func runIsolation(ctx context.Context, o isolationOpts, out io.Writer) error {
	if o.webhooks < 2 || o.webhooks > 32 {
		return fmt.Errorf("%w: --webhooks must be 2 to 32", errUsage)
	}
	for _, d := range o.dead {
		if d < 1 || d >= o.webhooks {
			return fmt.Errorf("%w: --dead %d must be 1 to --webhooks − 1", errUsage, d)
		}
	}
	sk, err := newSink("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sk.close()
	fmt.Fprintf(out, "regwebhook-load isolation: %d envelopes a round, as fast as answered on %d connections; every webhook takes every event\n\n",
		o.envelopes, o.conns)
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "dead\thealthy\tdeliveries/s\tper healthy webhook\tkept\tsent→delivered p99")
	row := func(d int, m *measured, base float64) {
		healthy := o.webhooks - d
		per := m.deliveryRate() / float64(healthy)
		kept := "-"
		if base > 0 {
			kept = fmt.Sprintf("%.2f", per/base)
		}
		lat := "-"
		if n := m.rd.nlat.Load(); n > 0 {
			l := slices.Clone(m.rd.lat[:n])
			slices.Sort(l)
			p, _ := percentile(l, 0.99)
			lat = fmt.Sprintf("%s (n=%d)", fmtMs(p), len(l))
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f (%s)\t%.0f\t%s\t%s\n", d, healthy, m.deliveryRate(), deliveredOf(m), per, kept, lat)
	}
	all, err := isolationRound(ctx, o, sk, o.webhooks, 0)
	if err != nil {
		return err
	}
	base := all.deliveryRate() / float64(o.webhooks)
	row(0, all, 0)
	for _, d := range o.dead {
		m, err := isolationRound(ctx, o, sk, o.webhooks-d, d)
		if err != nil {
			return err
		}
		row(d, m, base)
	}
	return tw.Flush()
}

func deliveredOf(m *measured) string {
	s := fmt.Sprintf("%d of %d", m.rd.unique.Load(), m.want)
	if !m.all {
		s += ", NOT ALL ARRIVED"
	}
	if len(m.s.failures) > 0 {
		s += ", refused: " + failures(m.s.failures)
	}
	return s
}

// isolationRound makes healthy webhooks at the receiver and dead ones at a
// black hole, all taking one repository, posts the envelopes and waits for
// the healthy webhooks' deliveries.
func isolationRound(ctx context.Context, o isolationOpts, sk *sink, healthy, dead int) (*measured, error) {
	w, err := newWorkload(newRunID(), 1)
	if err != nil {
		return nil, err
	}
	bh, err := newBlackHole()
	if err != nil {
		return nil, err
	}
	// Closed last: the requests still hanging then fail at once.
	defer bh.close()
	hooks := hooksFor(w, healthy, sk.uri)
	for k := range dead {
		hooks = append(hooks, hookSpec{Name: "ld" + w.run + "dead" + strconv.Itoa(k), URI: bh.uri(), Actions: []string{"push"}, Scope: w.repo(0) + ":*"})
	}
	a := newAdmin(o.target, o.adminToken)
	if err := a.create(ctx, hooks); err != nil {
		return nil, err
	}
	defer func() {
		if err := a.remove(context.WithoutCancel(ctx), hooks); err != nil {
			fmt.Fprintln(os.Stderr, "regwebhook-load:", err)
		}
	}()
	time.Sleep(o.settle)
	rd := newRound(w.run, o.envelopes, healthy)
	sk.cur.Store(rd)
	s := post(ctx, strings.TrimSuffix(o.target, "/")+"/v1/notifications", o.token, w, rd, o.envelopes, pace{conns: o.conns})
	want := int64(s.accepted) * int64(healthy)
	all := waitDeliveries(ctx, rd, want, o.idle)
	return &measured{name: fmt.Sprintf("%d healthy, %d dead", healthy, dead), s: s, rd: rd, want: want, all: all}, nil
}
