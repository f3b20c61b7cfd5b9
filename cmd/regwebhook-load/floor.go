package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	_ "modernc.org/sqlite" // the floor's embedded store: the driver regwebhook uses

	"github.com/regwebhook/regwebhook/internal/gogc"
)

// The floor is the cheapest program that does regwebhook's job on the same
// store: it answers the registry only once the envelope is stored durably,
// in the cheapest way the store offers (one INSERT, or one RPUSH), and a
// pool of workers takes stored envelopes and POSTs each, as it is, to every
// URI of its repository. It keeps no index, no dedupe marks, no history, no
// retries, no per-delivery state: what regwebhook does beyond it is what
// the ratios measure.

// floorOpts configure the floor.
type floorOpts struct {
	listen    string
	routes    string // file: JSON repository → URIs
	store     string // embedded | redis
	dir       string // embedded: the directory of floor.db
	sync      string // embedded: full | normal, as regwebhook's store.embedded.sync
	redisAddr string
	redisKey  string
	workers   int
	wrap      string // run: a command the floor runs under (a profiler), its words split at spaces
}

func (o *floorOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.store, "store", "embedded", "the store, as regwebhook's store.driver: embedded or redis")
	f.StringVar(&o.sync, "sync", "full", "embedded: synchronous mode, as regwebhook's store.embedded.sync (full or normal)")
	f.StringVar(&o.redisAddr, "redis-addr", "127.0.0.1:6379", "redis: the address, as regwebhook's store.redis.addr")
	f.IntVar(&o.workers, "workers", 32, "the floor's delivery workers, as regwebhook's delivery.workers")
}

func newFloorCmd() *cobra.Command {
	var o floorOpts
	var stopOnEOF bool
	cmd := &cobra.Command{
		Use:   "floor",
		Short: "Run the floor: store each envelope (one INSERT or RPUSH), POST it to every matching URI",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gogc.Set(os.Getenv) // as regwebhook serve: the ratios compare the programs, not the settings
			ctx := cmd.Context()
			if stopOnEOF {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				go func() {
					_, _ = io.Copy(io.Discard, cmd.InOrStdin())
					cancel()
				}()
			}
			return runFloor(ctx, o, cmd.OutOrStdout())
		},
	}
	o.flags(cmd)
	f := cmd.Flags()
	f.BoolVar(&stopOnEOF, "stop-on-eof", false, "stop when standard input ends (run ends the floor so, and it exits as any program does: a profiler it runs under writes its figures)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to listen on")
	f.StringVar(&o.routes, "routes", "", "JSON file: repository → URIs")
	f.StringVar(&o.dir, "dir", "", "embedded: directory of the floor's database")
	f.StringVar(&o.redisKey, "redis-key", "", "redis: the list the envelopes go to")
	return cmd
}

// queue is the floor's store: put stores one envelope durably; take removes
// and returns up to n stored envelopes, oldest first, waiting a little when
// there are none.
type queue interface {
	put(ctx context.Context, body []byte) error
	take(ctx context.Context, n int) ([][]byte, error)
	close() error
}

func runFloor(ctx context.Context, o floorOpts, out io.Writer) error {
	b, err := os.ReadFile(o.routes)
	if err != nil {
		return fmt.Errorf("%w: --routes: %v", errUsage, err)
	}
	var rt map[string][]string
	if err := json.Unmarshal(b, &rt); err != nil {
		return fmt.Errorf("%w: --routes %s: %v", errUsage, o.routes, err)
	}
	var q queue
	switch o.store {
	case "embedded":
		q, err = openSQLQueue(ctx, o.dir, o.sync)
	case "redis":
		q, err = openRedisQueue(ctx, o.redisAddr, o.redisKey)
	default:
		err = fmt.Errorf("%w: --store %q is not embedded or redis", errUsage, o.store)
	}
	if err != nil {
		return err
	}
	defer q.close()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	work := make(chan delivery, o.workers)
	stored := make(chan struct{}, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := q.put(r.Context(), body); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		select {
		case stored <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.workers, MaxIdleConnsPerHost: o.workers, IdleConnTimeout: 90 * time.Second,
	}}
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				send(client, d)
			}
		}()
	}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	err = takeLoop(ctx, q, rt, o.workers, stored, work)
	close(work)
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// delivery is one stored envelope for one URI.
type delivery struct {
	body []byte
	uri  string
}

// takeLoop takes stored envelopes as workers are free, and hands each out
// once per URI of its events' repositories.
func takeLoop(ctx context.Context, q queue, rt map[string][]string, batch int, stored <-chan struct{}, work chan<- delivery) error {
	for ctx.Err() == nil {
		bodies, err := q.take(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintln(os.Stderr, "floor: take:", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(bodies) == 0 {
			select {
			case <-stored:
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		for _, b := range bodies {
			for _, uri := range match(b, rt) {
				select {
				case work <- delivery{b, uri}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	return ctx.Err()
}

// match returns the URIs of the repositories of an envelope's events.
func match(body []byte, rt map[string][]string) []string {
	var env struct {
		Events []struct {
			Target struct {
				Repository string `json:"repository"`
			} `json:"target"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil
	}
	var out []string
	for _, e := range env.Events {
		out = append(out, rt[e.Target.Repository]...)
	}
	return out
}

func send(c *http.Client, d delivery) {
	resp, err := c.Post(d.uri, "application/json", bytes.NewReader(d.body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor: post:", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// sqlQueue is one table in a SQLite database in WAL mode, with the
// synchronous mode regwebhook's embedded store uses, on one connection as
// regwebhook's.
type sqlQueue struct{ db *sql.DB }

func openSQLQueue(ctx context.Context, dir, sync string) (*sqlQueue, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: --dir is required with --store embedded", errUsage)
	}
	mode := map[string]string{"full": "FULL", "normal": "NORMAL"}[sync]
	if mode == "" {
		return nil, fmt.Errorf("%w: --sync %q is not full or normal", errUsage, sync)
	}
	// A relative path would read as the URI's authority ("file://dir/…").
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(5000)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "synchronous("+mode+")")
	v.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: filepath.Join(dir, "floor.db"), RawQuery: v.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("floor: create table: %w", err)
	}
	return &sqlQueue{db}, nil
}

func (q *sqlQueue) put(ctx context.Context, body []byte) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO q (body) VALUES (?)`, body)
	return err
}

func (q *sqlQueue) take(ctx context.Context, n int) ([][]byte, error) {
	rows, err := q.db.QueryContext(ctx, `DELETE FROM q WHERE id IN (SELECT id FROM q ORDER BY id LIMIT ?) RETURNING body`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (q *sqlQueue) close() error { return q.db.Close() }

// redisQueue is one list: RPUSH to store, LPOP to take.
type redisQueue struct {
	c   *redis.Client
	key string
}

func openRedisQueue(ctx context.Context, addr, key string) (*redisQueue, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: --redis-key is required with --store redis", errUsage)
	}
	c, err := openRedis(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	return &redisQueue{c, key}, nil
}

// openRedis connects to the Redis at addr.
func openRedis(ctx context.Context, addr string) (*redis.Client, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	return c, nil
}

func (q *redisQueue) put(ctx context.Context, body []byte) error {
	return q.c.RPush(ctx, q.key, body).Err()
}

func (q *redisQueue) take(ctx context.Context, n int) ([][]byte, error) {
	vals, err := q.c.LPopCount(ctx, q.key, n).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, err
}

func (q *redisQueue) close() error {
	q.c.Del(context.Background(), q.key)
	return q.c.Close()
}

// floorProc is a floor started by run, as a process of its own like the
// regwebhook it is compared with.
type floorProc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	url   string
}

// startFloor runs `regwebhook-load floor` with o and the routes, and waits
// until it listens.
func startFloor(o floorOpts, rt map[string][]string) (*floorProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(rt)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(o.routes, b, 0o600); err != nil {
		return nil, err
	}
	args := append(strings.Fields(o.wrap), self, "floor", "--listen", "127.0.0.1:0", "--routes", o.routes, "--store", o.store,
		"--dir", o.dir, "--sync", o.sync, "--redis-addr", o.redisAddr, "--redis-key", o.redisKey,
		"--workers", strconv.Itoa(o.workers), "--stop-on-eof")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the floor: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the floor did not start: %q %v", line, err)
	}
	return &floorProc{cmd: cmd, stdin: stdin, url: addr}, nil
}

// floorExit is how long the floor has to exit once its input is closed,
// before it is sent SIGTERM: under a profiler, writing its figures takes a
// while.
const floorExit = 2 * time.Minute

// stop ends the floor by closing its input (--stop-on-eof), so that it exits
// as any program does; one that has not exited after floorExit gets SIGTERM.
func (f *floorProc) stop() error {
	f.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- f.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(floorExit):
		f.cmd.Process.Signal(syscall.SIGTERM)
		return <-done
	}
}
