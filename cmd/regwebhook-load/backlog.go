package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/payload"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	redisstore "github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
)

// backlogOpts configure backlog.
type backlogOpts struct {
	bin         string
	store       string
	data        string
	sync        string
	redisAddr   string
	redisPrefix string
	deliveries  int
	perEvent    int
	workers     int
	perWebhook  int
	idle        time.Duration
	keep        bool
}

func newBacklogCmd() *cobra.Command {
	var o backlogOpts
	cmd := &cobra.Command{
		Use:   "backlog",
		Short: "Queue a backlog of deliveries, start regwebhook serve on it, and measure the drain and its memory",
		Long: `backlog makes --per-event webhooks pointing at its own receiver and
commits --deliveries jobs for them straight into a store (as the receiver
would, rendered acr payloads of pushed manifests), with no regwebhook
running. Then it starts regwebhook serve (--regwebhook) on that store, and
waits until its receiver got every delivery once. It reports the drain's
deliveries per second, regwebhook's peak resident memory (VmHWM of
/proc/<pid>/status, and the largest VmRSS seen), duplicates, and the error
lines of regwebhook's log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBacklog(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.bin, "regwebhook", "regwebhook", "the regwebhook binary to start")
	f.StringVar(&o.store, "store", "embedded", "embedded or redis")
	f.StringVar(&o.data, "data", "", "embedded: a new directory for the store (default: a temporary one in the current directory)")
	f.StringVar(&o.sync, "sync", "full", "embedded: store.embedded.sync")
	f.StringVar(&o.redisAddr, "redis-addr", "127.0.0.1:6379", "redis: store.redis.addr")
	f.StringVar(&o.redisPrefix, "redis-prefix", "", "redis: store.redis.prefix (default: a new one)")
	f.IntVar(&o.deliveries, "deliveries", 1000000, "deliveries to queue")
	f.IntVar(&o.perEvent, "per-event", 4, "webhooks, each getting every event")
	f.IntVar(&o.workers, "workers", 32, "delivery.workers")
	f.IntVar(&o.perWebhook, "perwebhook", 8, "delivery.perwebhook")
	f.DurationVar(&o.idle, "idle", time.Minute, "give up when no delivery came for this long")
	f.BoolVar(&o.keep, "keep", false, "keep the store afterwards")
	return cmd
}

func runBacklog(ctx context.Context, o backlogOpts, out io.Writer) error {
	if o.perEvent < 1 || o.perEvent > 32 || o.deliveries%o.perEvent != 0 {
		return fmt.Errorf("%w: --per-event must be 1 to 32 and divide --deliveries", errUsage)
	}
	sk, err := newSink("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sk.close()
	work, err := os.MkdirTemp(".", "regwebhook-load-backlog-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.data == "" {
		o.data = filepath.Join(work, "data")
	}
	if o.redisPrefix == "" {
		o.redisPrefix = "regwebhook-load-backlog-" + newRunID() + ":"
	}
	events := o.deliveries / o.perEvent
	w, err := newWorkload(newRunID(), 1)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "regwebhook-load backlog: %d deliveries (%d events × %d webhooks), store %s\n", o.deliveries, events, o.perEvent, o.storeDesc())
	t0 := time.Now()
	if err := fillBacklog(ctx, o, w, events, sk); err != nil {
		return err
	}
	fmt.Fprintf(out, "queued in %s, straight into the store\n", time.Since(t0).Round(time.Second))

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := filepath.Join(work, "regwebhook.yml")
	if err := os.WriteFile(cfg, []byte(o.config(addr)), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(work, "regwebhook.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	rd := newRound(w.run, events, o.perEvent)
	sk.cur.Store(rd)
	cmd := exec.Command(o.bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	started := now()
	for i := range rd.sent {
		rd.sent[i].Store(started)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", o.bin, err)
	}
	pid := cmd.Process.Pid
	var maxRSS atomic.Int64
	stopWatch := make(chan struct{})
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb, err := procStatus(pid, "VmRSS"); err == nil && kb > maxRSS.Load() {
				maxRSS.Store(kb)
			}
			select {
			case <-stopWatch:
				return
			case <-tick.C:
			}
		}
	}()
	all := waitDeliveries(ctx, rd, int64(o.deliveries), o.idle)
	drained := now()
	hwm, hwmErr := procStatus(pid, "VmHWM")
	close(stopWatch)
	cmd.Process.Signal(syscall.SIGTERM)
	waitErr := cmd.Wait()

	first := rd.firstDel.Load()
	fmt.Fprintf(out, "drained %d of %d deliveries in %s (from the first delivery: %s): %.0f deliveries/s; all arrived: %v\n",
		rd.unique.Load(), o.deliveries, time.Duration(drained-started).Round(time.Millisecond),
		time.Duration(rd.lastDel.Load()-first).Round(time.Millisecond), rate(int(rd.unique.Load()), rd.lastDel.Load()-first), all)
	fmt.Fprintf(out, "duplicate deliveries: %d; deliveries of no queued job: %d\n", rd.dups.Load(), rd.unknown.Load())
	if hwmErr != nil {
		fmt.Fprintf(out, "regwebhook peak RSS: unknown (%v); largest VmRSS seen: %.1f MB\n", hwmErr, float64(maxRSS.Load())/1024)
	} else {
		fmt.Fprintf(out, "regwebhook peak RSS (VmHWM): %.1f MB; largest VmRSS seen: %.1f MB\n", float64(hwm)/1024, float64(maxRSS.Load())/1024)
	}
	fmt.Fprintf(out, "regwebhook serve exited: %v\n", errString(waitErr))
	return reportLog(out, logPath)
}

func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func (o backlogOpts) storeDesc() string {
	if o.store == "redis" {
		return fmt.Sprintf("redis at %s, prefix %s", o.redisAddr, o.redisPrefix)
	}
	return fmt.Sprintf("embedded in %s, sync %s", o.data, o.sync)
}

// config is regwebhook's config for the drain.
func (o backlogOpts) config(addr string) string {
	st := fmt.Sprintf("  driver: embedded\n  embedded: {path: %q, sync: %s}\n", o.data, o.sync)
	if o.store == "redis" {
		st = fmt.Sprintf("  driver: redis\n  redis: {addr: %q, prefix: %q}\n", o.redisAddr, o.redisPrefix)
	}
	return fmt.Sprintf("version: 1\nlog: {level: warn}\nhttp: {addr: %q}\nstore:\n%sdelivery: {workers: %d, perwebhook: %d}\n",
		addr, st, o.workers, o.perWebhook)
}

// fillBacklog makes the webhooks and commits the jobs, 1,000 a transaction.
func fillBacklog(ctx context.Context, o backlogOpts, w *workload, events int, sk *sink) error {
	limits := store.Limits{History: 100, DeadLetters: 10000}
	var st store.Store
	var err error
	if o.store == "redis" {
		// As serve keeps them: in the inbox (docs/redis.md, "Inbox").
		st, err = redisstore.Open(ctx, redisstore.Options{Addr: o.redisAddr, Prefix: o.redisPrefix, Limits: limits, Inbox: true})
	} else {
		st, err = sqlite.Open(ctx, sqlite.Options{Dir: o.data, Sync: o.sync, Limits: limits})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	var hooks []*rule.Webhook
	for k := range o.perEvent {
		h := &rule.Webhook{ID: uuid.NewString(), Name: fmt.Sprintf("ld%sk%d", w.run, k), URI: sk.uri(k),
			Actions: []event.Action{event.Push}, Scope: w.repo(0) + ":*", Source: rule.FromAPI}
		h.Defaults()
		if err := st.CreateWebhook(ctx, h); err != nil {
			return fmt.Errorf("create webhook %s: %w", h.Name, err)
		}
		hooks = append(hooks, h)
	}
	now := time.Now().UTC()
	per := max(1, 1000/o.perEvent)
	for first := 0; first < events; first += per {
		err := st.Ingest(ctx, func(tx store.Tx) error {
			for seq := first; seq < min(first+per, events); seq++ {
				ev := event.Event{
					ID: w.run + "-" + strconv.Itoa(seq), Timestamp: now, Action: event.Push,
					Target: event.Target{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 555, Length: 555,
						Digest: fmt.Sprintf("sha256:%064x", seq), Repository: w.repo(0), Tag: "t" + strconv.Itoa(seq)},
					Request: event.Request{ID: "req-" + strconv.Itoa(seq), Host: "registry.example.com", Method: "PUT", UserAgent: "regwebhook-load"},
				}
				rendered, ctype, err := payload.Render(rule.ACR, &ev)
				if err != nil {
					return err
				}
				body := string(rendered)
				for _, h := range hooks {
					job := store.Job{ID: receive.DeliveryID(ev.ID, h.ID), WebhookID: h.ID, EventID: ev.ID, Action: "push",
						Payload: body, ContentType: ctype, Created: now, Due: now}
					if err := tx.Enqueue(ctx, job); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("queue jobs: %w", err)
		}
	}
	return nil
}

// freeAddr returns a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// procStatus reads a "kB" field of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// reportLog prints how many warning and error lines regwebhook logged, and
// the first few.
func reportLog(out io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "level=error") || strings.Contains(l, "level=warn") || strings.Contains(l, "level=fatal") {
			lines = append(lines, l)
		}
	}
	fmt.Fprintf(out, "warning and error lines in regwebhook's log: %d\n", len(lines))
	for _, l := range lines[:min(len(lines), 10)] {
		fmt.Fprintln(out, "  "+l)
	}
	return nil
}
