// Package redis is the store that several regwebhook processes share: every
// piece of state in one Redis (go-redis v9) under a key prefix, every change
// of state one Lua script (scripts.go), so that each job is delivered by one
// process at a time and a process that dies only delays its leased jobs until
// their leases run out.
//
// All keys share one hash tag, so that every script runs on one slot; the
// layout, each script's KEYS and ARGV, and the reasons for the choices made
// are in docs/redis.md.
package redis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/batch"
)

// Time-outs of every connection to Redis. A Redis that refuses connections
// fails a call at once; one that hangs (frozen, or a network that drops
// packets) fails it after these, so that the receiver can answer 503 before
// the registry's own time-out and /readyz reports it.
const (
	DialTimeout  = 2 * time.Second
	ReadTimeout  = 2 * time.Second
	WriteTimeout = 2 * time.Second
)

// maintainBatch bounds what one Maintain does of each kind, so that one
// script never holds Redis long; the dispatcher calls Maintain every second.
const maintainBatch = 1000

// Options configure Open; they are the config file's store.redis.
type Options struct {
	// Addr is host:port, or a redis:// or rediss:// URL (which may carry a
	// user, password and database).
	Addr string
	// Password and DB, when set, take precedence over the URL's.
	Password string
	DB       int
	// Prefix starts every key. When it holds no hash tag ({…}), it becomes
	// one: "regwebhook:" gives keys "{regwebhook}:…".
	Prefix string
	// TLS connects with TLS (as a rediss:// URL does); CAFile adds a CA to
	// the system's to verify the server, and implies TLS.
	TLS    bool
	CAFile string
	// Strict refuses to open a Redis whose persistence settings may lose
	// what regwebhook has answered 2xx for (see Warnings).
	Strict bool
	// Limits bound history and dead letters per webhook; both must be positive.
	Limits store.Limits
	// Inbox keeps the new jobs of an envelope as one entry of a list
	// (docs/redis.md, "Inbox"), as serve does. Without it, every job is
	// one of the queue's sorted sets (the conformance suite runs both).
	Inbox bool
	// AckLinger is how long an ack waits for others to join its
	// transaction; 0 takes ackLinger (16 ms). Tests make it long to show
	// what ends the wait sooner (FlushAcks).
	AckLinger time.Duration
}

// Store is the Redis store. It is safe for concurrent use, by any number of
// processes on the same Redis and prefix.
type Store struct {
	c        *redis.Client
	addr     string // for messages: no password
	prefix   string // with its hash tag, "{regwebhook}:"
	limits   store.Limits
	process  string // this process, in Announce
	warnings []string
	// pipeliner sends Ingest's commits together, acks runs acks together
	// (batch.go).
	pipeliner *batch.Runner[*scriptCall]
	acks      *batch.Runner[*ackCall]
	ackLinger time.Duration
	// entries encodes the history entries of Ack and Fail.
	entries history.Encoder
	// in is the inbox (inbox.go), when Options.Inbox.
	in *inbox

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Shared = (*Store)(nil)
)

// Open connects to Redis, checks that it answers, loads the store's
// function library (Redis 7.0 or later), and reads its persistence settings
// (see Warnings); with o.Strict it fails when they are not safe.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Limits.History <= 0 || o.Limits.DeadLetters <= 0 {
		return nil, fmt.Errorf("open redis store: limits must be positive, got history %d and dead letters %d",
			o.Limits.History, o.Limits.DeadLetters)
	}
	prefix, err := KeyPrefix(o.Prefix)
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	opt, err := clientOptions(o)
	if err != nil {
		return nil, fmt.Errorf("open redis store at %s: %w", displayAddr(o.Addr), err)
	}
	s := &Store{
		c:         redis.NewClient(opt),
		addr:      displayAddr(o.Addr),
		prefix:    prefix,
		limits:    o.Limits,
		process:   processID(),
		ackLinger: o.AckLinger,
	}
	if s.ackLinger <= 0 {
		s.ackLinger = ackLinger
	}
	s.pipeliner = s.newPipeliner()
	s.acks = s.newAcker()
	if o.Inbox {
		s.in = newInbox(s)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open redis store: %w", err)
	}
	if err := s.load(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open redis store at %s: %w", s.addr, err)
	}
	if s.warnings, err = s.persistence(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open redis store at %s: %w", s.addr, err)
	}
	if o.Strict && len(s.warnings) > 0 {
		s.Close()
		return nil, fmt.Errorf("open redis store at %s: store.redis.strict refuses it: %s", s.addr, strings.Join(s.warnings, "; "))
	}
	return s, nil
}

// KeyPrefix returns the prefix of every key for the configured prefix: the
// prefix itself when it has a hash tag, else the prefix as one —
// "regwebhook:" gives "{regwebhook}:".
func KeyPrefix(prefix string) (string, error) {
	if prefix == "" {
		return "", errors.New("the key prefix is empty")
	}
	if open := strings.IndexByte(prefix, '{'); open >= 0 {
		if end := strings.IndexByte(prefix[open+1:], '}'); end > 0 {
			return prefix, nil
		}
		return "", fmt.Errorf("key prefix %q has a { without a closing } after it, or an empty {}", prefix)
	}
	return "{" + strings.TrimSuffix(prefix, ":") + "}:", nil
}

// clientOptions turns o into go-redis options, with this package's time-outs.
func clientOptions(o Options) (*redis.Options, error) {
	var opt *redis.Options
	if strings.HasPrefix(o.Addr, "redis://") || strings.HasPrefix(o.Addr, "rediss://") {
		var err error
		if opt, err = redis.ParseURL(o.Addr); err != nil {
			return nil, fmt.Errorf("parse address: %w", err)
		}
	} else {
		opt = &redis.Options{Addr: o.Addr}
	}
	if o.Password != "" {
		opt.Password = o.Password
	}
	if o.DB != 0 {
		opt.DB = o.DB
	}
	if o.TLS || o.CAFile != "" {
		if opt.TLSConfig == nil {
			host, _, err := net.SplitHostPort(opt.Addr)
			if err != nil {
				return nil, fmt.Errorf("address %q: %w", opt.Addr, err)
			}
			opt.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		opt.TLSConfig.RootCAs = pool
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = DialTimeout, ReadTimeout, WriteTimeout
	opt.ContextTimeoutEnabled = true
	// go-redis retries a call that could not connect, or whose connection
	// died before the answer (docs/redis.md says why every script is safe
	// run twice), never one that timed out.
	opt.MaxRetries = 2
	// RESP2: the store uses nothing of RESP3, whose push notifications
	// go-redis looks for before every reply (2-6 % of the CPU per envelope,
	// regwebhook's and Redis's, in serial runs); it also skips HELLO.
	opt.Protocol = 2
	return opt, nil
}

// displayAddr is addr without a password, for messages.
func displayAddr(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || u.User == nil {
		return addr
	}
	u.User = nil
	return u.String()
}

// processID names this process in Announce: host, pid and a random part, so
// that a restarted process is a new one.
func processID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}

// Warnings are the problems with Redis's persistence settings found at Open:
// AOF off, or a maxmemory-policy that may evict keys. Each says what may be
// lost and what to set.
func (s *Store) Warnings() []string { return s.warnings }

// Close closes the connections, after forgetting this process's Announce.
// It is safe to call twice; calls after it fail with store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if s.in != nil {
			// Another process would take them back once this one's
			// heartbeat ran out; now is sooner.
			_ = s.in.release(ctx)
		}
		s.c.ZRem(ctx, s.key("replicas"), s.process)
		s.c.HDel(ctx, s.key("replicas:config"), s.process)
		if err := s.c.Close(); err != nil {
			s.closeErr = fmt.Errorf("close redis store at %s: %w", s.addr, err)
		}
	})
	return s.closeErr
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis at %s: %w", s.addr, classify(err))
	}
	return nil
}

// Depth counts jobs by state at now.
func (s *Store) Depth(ctx context.Context, now time.Time) (store.Depth, error) {
	if s.in != nil {
		if err := s.in.pendingCounts(ctx); err != nil {
			return store.Depth{}, fmt.Errorf("count jobs: %w", err)
		}
	}
	v, err := s.run(ctx, depthScript, s.keys("queued", "leased", "deadall"), micros(now)).Int64Slice()
	if err != nil {
		return store.Depth{}, fmt.Errorf("count jobs: %w", classify(err))
	}
	if len(v) != 4 {
		return store.Depth{}, fmt.Errorf("count jobs: got %d counts, want 4", len(v))
	}
	return store.Depth{Ready: int(v[0]), Delayed: int(v[1]), Leased: int(v[2]), Dead: int(v[3])}, nil
}

// key is the name of a fixed key.
func (s *Store) key(name string) string { return s.prefix + name }

// keys are the names of fixed keys, a script's KEYS.
func (s *Store) keys(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.prefix + n
	}
	return out
}

// classify marks err as store.ErrUnavailable unless Redis answered it with
// an error that is about the command (a bug, not an outage): no answer, a
// closed client, a time-out, and the errors of a Redis that cannot take
// writes now (loading, out of memory, read-only replica, …) are outages.
func classify(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	msg := re.Error()
	for _, p := range []string{"LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "MISCONF", "NOREPLICAS", "CLUSTERDOWN", "TRYAGAIN", "NOAUTH", "WRONGPASS", "NOPERM"} {
		if strings.HasPrefix(msg, p) {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	return err
}

// nanos is how times are kept in hashes: unix nanoseconds in decimal, the
// zero time as 0.
func nanos(t time.Time) string {
	var d [maxHead]byte
	return string(appendNanos(d[:0], t))
}

// appendNanos appends nanos(t) to b.
func appendNanos(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, '0')
	}
	return strconv.AppendInt(b, t.UnixNano(), 10)
}

// nanosLen is the length of nanos(t).
func nanosLen(t time.Time) int {
	if t.IsZero() {
		return 1
	}
	return decimalLen(t.UnixNano())
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, n).UTC(), nil
}

// micros is how times are sorted-set scores: unix microseconds in decimal.
func micros(t time.Time) string {
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// newToken returns a random lease token base.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails on the platforms Go supports
	return hex.EncodeToString(b[:])
}
