package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// runOpts configure run.
type runOpts struct {
	target     string
	token      string
	adminToken string
	webhooks   int
	perEvent   int
	envelopes  int
	duration   time.Duration
	conns      int
	serial     bool
	rate       float64
	receiver   string
	idle       time.Duration
	settle     time.Duration
	noFloor    bool
	floorOnly  bool
	pid        int
	repeat     int
	floorDir   string
	floor      floorOpts
}

func newRunCmd() *cobra.Command {
	var o runOpts
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Post envelopes to a running regwebhook, then to the floor; print both and the ratios",
		Long: `run makes webhooks through regwebhook's admin API that point at its own
receiver, posts envelopes in the registry's format (a captured push of a
manifest by tag, with a unique id, tag and digest each), waits until every
webhook got every accepted event, and deletes the webhooks. Then it starts
the floor (regwebhook-load floor) on the same store and does the same.

It reports envelopes accepted per second (first send to last answer),
deliveries per second (first send to last delivery), the time to answer
and the time from sending an envelope to receiving each delivery, with the
number of samples of every percentile; the CPU time per envelope of the
process (regwebhook's with --pid), of Redis (INFO cpu, on --store redis)
and of this command; on Redis, the commands Redis ran and the reads of
requests it made per envelope (INFO stats); and regwebhook's figures over
the floor's.

--store, --sync and --redis-addr must be regwebhook's own store settings,
so that the floor uses the same store the same way; --floor-dir should be
on the same file system as regwebhook's store.embedded.path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "http://127.0.0.1:5080", "the running regwebhook")
	f.StringVar(&o.token, "token", "", "regwebhook's receiver.token")
	f.StringVar(&o.adminToken, "admin-token", "", "regwebhook's admin.token (none: regwebhook must be on this machine)")
	f.IntVar(&o.webhooks, "webhooks", 40, "webhooks to make; a multiple of --per-event")
	f.IntVar(&o.perEvent, "per-event", 4, "webhooks each event goes to (at most 32)")
	f.IntVar(&o.envelopes, "envelopes", 0, "envelopes to post, one event each (default 20000, or --rate × --duration)")
	f.DurationVar(&o.duration, "duration", 20*time.Second, "with --rate: how long to post")
	f.IntVar(&o.conns, "conns", 16, "connections posting at once")
	f.BoolVar(&o.serial, "serial", false, "post as the registry does: one connection, the next envelope only after the answer")
	f.Float64Var(&o.rate, "rate", 0, "envelopes per second (0: as fast as they are answered)")
	f.StringVar(&o.receiver, "receiver", "127.0.0.1:0", "address of the load command's own webhook receiver")
	f.DurationVar(&o.idle, "idle", 30*time.Second, "stop waiting for deliveries when none came for this long")
	f.DurationVar(&o.settle, "settle", time.Second, "wait after making webhooks, for every replica to have them")
	f.BoolVar(&o.noFloor, "no-floor", false, "measure regwebhook only")
	f.BoolVar(&o.floorOnly, "floor-only", false, "measure the floor only")
	f.IntVar(&o.pid, "pid", 0, "regwebhook's process id, on this machine: report its CPU time per envelope (0: not reported)")
	f.IntVar(&o.repeat, "repeat", 1, "measure regwebhook and the floor this many times, in turn, and print the median ratios")
	f.StringVar(&o.floorDir, "floor-dir", ".", "embedded: where the floor's database goes (a temporary directory inside it)")
	f.StringVar(&o.floor.wrap, "floor-wrap", "", "a command to run the floor under, its words split at spaces (a profiler: \"valgrind --tool=callgrind\")")
	o.floor.flags(cmd)
	return cmd
}

func runRun(ctx context.Context, o runOpts, out io.Writer) error {
	p := pace{conns: o.conns, rate: o.rate}
	if o.serial {
		p = pace{conns: 1}
	}
	if o.envelopes == 0 {
		o.envelopes = 20000
		if o.rate > 0 {
			o.envelopes = int(o.rate * o.duration.Seconds())
		}
	}
	switch {
	case o.perEvent < 1 || o.perEvent > 32:
		return fmt.Errorf("%w: --per-event must be 1 to 32", errUsage)
	case o.webhooks < o.perEvent || o.webhooks%o.perEvent != 0:
		return fmt.Errorf("%w: --webhooks must be a multiple of --per-event", errUsage)
	case p.conns < 1 || o.envelopes < 1:
		return fmt.Errorf("%w: --conns and --envelopes must be positive", errUsage)
	}
	groups := o.webhooks / o.perEvent
	sk, err := newSink(o.receiver)
	if err != nil {
		return err
	}
	defer sk.close()

	fmt.Fprintf(out, "regwebhook-load run: %d envelopes of one pushed manifest each, %s; %d webhooks, %d per event\n",
		o.envelopes, p, o.webhooks, o.perEvent)
	fmt.Fprintf(out, "store: %s; floor: %s, %d workers\n", storeDesc(o.floor), floorDesc(o.floor), o.floor.workers)
	var rounds [][]*measured
	for i := range max(1, o.repeat) {
		var results []*measured
		if !o.floorOnly {
			m, err := measureRegwebhook(ctx, o, p, groups, sk)
			if err != nil {
				return err
			}
			results = append(results, m)
		}
		if !o.noFloor {
			m, err := measureFloor(ctx, o, p, groups, sk)
			if err != nil {
				return err
			}
			results = append(results, m)
		}
		if o.repeat > 1 {
			fmt.Fprintf(out, "\nround %d of %d", i+1, o.repeat)
		}
		fmt.Fprintln(out)
		table(out, results)
		rounds = append(rounds, results)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(rounds) > 1 && len(rounds[0]) == 2 {
		fmt.Fprintln(out)
		medians(out, rounds)
	}
	return nil
}

func storeDesc(o floorOpts) string {
	if o.store == "redis" {
		return "redis at " + o.redisAddr
	}
	return "embedded, sync " + o.sync
}

func floorDesc(o floorOpts) string {
	if o.store == "redis" {
		return "one RPUSH per envelope, LPOP to take"
	}
	return "one INSERT per envelope (its own transaction), DELETE … RETURNING to take"
}

// measureRegwebhook makes the webhooks, posts the envelopes, waits for the
// deliveries and deletes the webhooks.
func measureRegwebhook(ctx context.Context, o runOpts, p pace, groups int, sk *sink) (*measured, error) {
	w, err := newWorkload(newRunID(), groups)
	if err != nil {
		return nil, err
	}
	hooks := hooksFor(w, o.perEvent, sk.uri)
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
	return measure(ctx, "regwebhook", strings.TrimSuffix(o.target, "/")+"/v1/notifications", o, p, w, sk, o.pid)
}

// measureFloor starts the floor on the same store and does the same.
func measureFloor(ctx context.Context, o runOpts, p pace, groups int, sk *sink) (*measured, error) {
	w, err := newWorkload(newRunID(), groups)
	if err != nil {
		return nil, err
	}
	fo := o.floor
	if fo.store == "embedded" {
		if fo.dir, err = os.MkdirTemp(o.floorDir, "regwebhook-load-floor-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(fo.dir)
	} else {
		fo.redisKey = "regwebhook-load:floor:" + w.run
		dir, err := os.MkdirTemp("", "regwebhook-load-floor-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		fo.dir = dir
	}
	fo.routes = filepath.Join(fo.dir, "routes.json")
	fp, err := startFloor(fo, routes(hooksFor(w, o.perEvent, sk.uri)))
	if err != nil {
		return nil, err
	}
	defer fp.stop()
	return measure(ctx, "floor", fp.url+"/v1/notifications", o, p, w, sk, fp.cmd.Process.Pid)
}

// measure posts the round's envelopes to url and waits for the deliveries,
// counting the CPU time of process pid (0: not counted), of Redis when the
// store is Redis, and of this command meanwhile, and on Redis what Redis
// did (redisCounts).
func measure(ctx context.Context, name, url string, o runOpts, p pace, w *workload, sk *sink, pid int) (*measured, error) {
	meter := cpuMeter{pid: pid}
	if o.floor.store == "redis" {
		c, err := openRedis(ctx, o.floor.redisAddr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		meter.redis = c
	}
	rd := newRound(w.run, o.envelopes, o.perEvent)
	sk.cur.Store(rd)
	counts0, counted := countRedis(ctx, meter.redis)
	cpu0 := meter.read(ctx)
	s := post(ctx, url, o.token, w, rd, o.envelopes, p)
	want := int64(s.accepted) * int64(o.perEvent)
	all := waitDeliveries(ctx, rd, want, o.idle)
	m := &measured{name: name, s: s, rd: rd, want: want, all: all, cpu: meter.read(ctx).since(cpu0)}
	if counts, ok := countRedis(ctx, meter.redis); counted && ok {
		done := counts.since(counts0)
		m.redis = &done
	}
	return m, nil
}
