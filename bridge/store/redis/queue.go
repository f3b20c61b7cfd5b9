package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Lease takes, for each webhook of req.Want, up to its count of due queued
// jobs, oldest due first, and reports when each one's earliest job still
// queued is due. Due times are compared to the microsecond.
func (s *Store) Lease(ctx context.Context, req store.LeaseRequest) (store.LeaseResult, error) {
	if s.in != nil {
		return s.in.lease(ctx, req)
	}
	return s.leaseQueue(ctx, req, nil, nil)
}

// leaseQueue leases from the queue; with also, it sends what also adds to
// the same transaction. buffered has, by webhook, the due times of the
// jobs an inbox buffer would serve it (see leaseScript): the queue leases
// only those that come before them.
func (s *Store) leaseQueue(ctx context.Context, req store.LeaseRequest, buffered map[string]string,
	also func(context.Context, redis.Pipeliner)) (store.LeaseResult, error) {
	res := store.LeaseResult{Next: map[string]time.Time{}}
	if len(req.Want) == 0 {
		return res, nil
	}
	ids := make([]string, 0, len(req.Want))
	for id := range req.Want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	until := req.Now.Add(req.For)
	args := []any{micros(req.Now), nanos(until), newToken(), "2"}
	if buffered != nil {
		args[3] = "3"
	}
	for _, id := range ids {
		args = append(args, id, max(req.Want[id], 0))
		if buffered != nil {
			args = append(args, buffered[id])
		}
	}
	keys := s.keys("queued", "leased", "created", "leases")
	var cmd *redis.Cmd
	if also == nil {
		cmd = s.run(ctx, leaseScript, keys, args...)
	} else {
		pipe := s.c.TxPipeline()
		cmd = s.call(ctx, pipe, leaseScript, keys, args...)
		also(ctx, pipe)
		_, _ = pipe.Exec(ctx)
		if notLoaded(cmd.Err()) {
			cmd = s.run(ctx, leaseScript, keys, args...)
		}
	}
	v, err := cmd.Slice()
	if err != nil {
		return store.LeaseResult{}, fmt.Errorf("lease jobs: %w", classify(err))
	}
	for _, w := range v {
		hook, ok := w.([]any)
		if !ok || len(hook) < 2 {
			return store.LeaseResult{}, fmt.Errorf("lease jobs: bad answer %v", w)
		}
		id, next := str(hook[0]), str(hook[1])
		if next != "" {
			if res.Next[id], err = fromNanos(next); err != nil {
				return store.LeaseResult{}, fmt.Errorf("lease jobs of webhook %q: %w", id, err)
			}
		}
		for _, raw := range hook[2:] {
			l, err := leaseOf(raw, until)
			if err != nil {
				return store.LeaseResult{}, fmt.Errorf("lease jobs of webhook %q: %w", id, err)
			}
			res.Leases = append(res.Leases, l)
		}
	}
	return res, nil
}

// leaseOf reads one job of leaseScript's answer: its string, id, token.
func leaseOf(raw any, until time.Time) (store.Lease, error) {
	f, ok := raw.([]any)
	if !ok || len(f) != 3 {
		return store.Lease{}, fmt.Errorf("bad leased job %v", raw)
	}
	j, err := decodeJob(str(f[1]), str(f[0]))
	if err != nil {
		return store.Lease{}, err
	}
	j.Attempts++ // this lease's
	return store.Lease{Job: j, Token: str(f[2]), Until: until}, nil
}

// encodeJob is a job as Redis keeps it (j:<id>, see decode in scripts.go):
// webhook, event, action, content type, created, redelivery, attempts and
// due, each as its length in decimal, ':' and its bytes, then the payload.
func encodeJob(j store.Job) string {
	var b strings.Builder
	b.Grow(jobLen(j))
	writeJob(&b, j)
	return b.String()
}

// writeJob writes encodeJob's string of j to b. Its numbers are formatted
// on the stack: an inbox entry is written straight from its jobs, sized
// by jobLen first.
func writeJob(b *strings.Builder, j store.Job) {
	for _, f := range [...]string{j.WebhookID, j.EventID, j.Action, j.ContentType} {
		writeNetstring(b, f)
	}
	var d [maxHead]byte
	writeNetbytes(b, appendNanos(d[:0], j.Created))
	writeNetstring(b, redelivery(j))
	writeNetbytes(b, strconv.AppendInt(d[:0], int64(j.Attempts), 10))
	writeNetbytes(b, appendNanos(d[:0], j.Due))
	b.WriteString(j.Payload)
}

// jobLen is the length of encodeJob's string of j, counted without
// writing it.
func jobLen(j store.Job) int {
	n := len(j.Payload)
	for _, f := range [...]int{len(j.WebhookID), len(j.EventID), len(j.Action), len(j.ContentType),
		nanosLen(j.Created), len(redelivery(j)), decimalLen(int64(j.Attempts)), nanosLen(j.Due)} {
		n += decimalLen(int64(f)) + 1 + f
	}
	return n
}

// redelivery is j's redelivery field: "1" for a redelivery, else "0".
func redelivery(j store.Job) string {
	if j.Redelivery {
		return "1"
	}
	return "0"
}

// writeNetstring writes appendNetstring's bytes of s to b.
func writeNetstring(b *strings.Builder, s string) {
	writeHead(b, len(s))
	b.WriteString(s)
}

// writeNetbytes is writeNetstring of the bytes of f.
func writeNetbytes(b *strings.Builder, f []byte) {
	writeHead(b, len(f))
	b.Write(f)
}

// writeHead writes appendHead's head of a netstring of n bytes to b.
func writeHead(b *strings.Builder, n int) {
	var d [maxHead]byte
	b.Write(appendHead(d[:0], n))
}

// maxHead is the longest head of a netstring: its length in decimal, ':'.
const maxHead = 20

// decimalLen is the length of n in decimal, its sign included.
func decimalLen(n int64) int {
	l, u := 1, uint64(n)
	if n < 0 {
		l, u = 2, -u
	}
	for ; u >= 10; u /= 10 {
		l++
	}
	return l
}

// appendNetstring appends s as its length in decimal, ':' and its bytes:
// a field of a job's string or of an inbox entry.
func appendNetstring(b []byte, s string) []byte {
	return append(appendHead(b, len(s)), s...)
}

// appendHead appends the head of a netstring of n bytes: n in decimal,
// ':'.
func appendHead(b []byte, n int) []byte {
	return append(strconv.AppendInt(b, int64(n), 10), ':')
}

// cutNetstring reads the field appendNetstring wrote at the head of s.
func cutNetstring(s string) (field, rest string, ok bool) {
	size, rest, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(size)
	if !ok || err != nil || n < 0 || n > len(rest) {
		return "", s, false
	}
	return rest[:n], rest[n:], true
}

// decodeJob reads the job id from its string.
func decodeJob(id, s string) (store.Job, error) {
	var f jobFields
	for i := range len(f) - 1 {
		field, rest, ok := cutNetstring(s)
		if !ok {
			return store.Job{}, fmt.Errorf("job %q: bad string at field %d", id, i+1)
		}
		f[i], s = field, rest
	}
	f[len(f)-1] = s
	return jobOf(id, &f)
}

// jobFields are a job's fields as its string and the scripts' answers hold
// them: webhook, event, action, type, created, redelivery, attempts, due,
// payload. An array, so that reading a job makes no slice of them.
type jobFields [9]string

// jobOf reads a job from its fields.
func jobOf(id string, f *jobFields) (store.Job, error) {
	j := store.Job{
		ID:          id,
		WebhookID:   f[0],
		EventID:     f[1],
		Action:      f[2],
		ContentType: f[3],
		Redelivery:  f[5] == "1",
		Payload:     f[8],
	}
	var err error
	if j.Created, err = fromNanos(f[4]); err != nil {
		return store.Job{}, fmt.Errorf("job %q created: %w", id, err)
	}
	if j.Attempts, err = strconv.Atoi(f[6]); err != nil {
		return store.Job{}, fmt.Errorf("job %q attempts: %w", id, err)
	}
	if j.Due, err = fromNanos(f[7]); err != nil {
		return store.Job{}, fmt.Errorf("job %q due: %w", id, err)
	}
	return j, nil
}

// str is a string of a script's answer; nil (a missing field) is "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// inboxLease returns the inbox job of l, taken out of the leases, when l
// is a lease of the inbox's; one of its tokens that is no longer held
// (run out, dropped) is a lost lease of no job.
func (s *Store) inboxLease(l store.Lease) (*ijob, bool) {
	if s.in == nil {
		return nil, false
	}
	return s.in.held(l.Token)
}

// errLeaseMismatch: the lease's token holds the job but its attempts or
// creation time are not the job's; Fail decided on wrong facts.
var errLeaseMismatch = errors.New("the lease's attempts or creation time are not the job's")

// Ack deletes the delivered job and records e in its webhook's history.
// Acks made while others are on their way to Redis go together in one run
// of ackScript (see batch.go): the workers of a busy dispatcher finish
// many deliveries at once.
func (s *Store) Ack(ctx context.Context, l store.Lease, e history.Entry) error {
	if j, ok := s.inboxLease(l); ok {
		return s.in.ack(ctx, j, e)
	}
	entry, err := s.entries.Encode(e)
	if err != nil {
		return fmt.Errorf("ack job %q: encode history entry: %w", l.ID, err)
	}
	// Once its batch has run, nothing reads the entry: the buffer goes back.
	defer s.entries.Release(entry)
	if err := s.acks.Do(&ackCall{ctx: ctx, id: l.ID, token: l.Token, webhook: l.WebhookID, entry: *entry}); err != nil {
		return fmt.Errorf("ack job %q: %w", l.ID, err)
	}
	return nil
}

// Fail records the failed attempt, and queues the job again at f.Due or,
// when f.Exhausted says so for the lease's attempts and creation time, moves
// it to its webhook's dead letters. The script checks that the job still has
// those attempts and that creation time, so the decision is the store's.
func (s *Store) Fail(ctx context.Context, l store.Lease, f store.Failure) (dead bool, err error) {
	if j, ok := s.inboxLease(l); ok {
		if err := s.in.hold(ctx, j); err != nil {
			return false, fmt.Errorf("fail job %q: %w", l.ID, err)
		}
	}
	entry, err := s.entries.Encode(f.Entry)
	if err != nil {
		return false, fmt.Errorf("fail job %q: encode history entry: %w", l.ID, err)
	}
	defer s.entries.Release(entry)
	if s.in != nil {
		defer s.in.queued(l.WebhookID) // queued again, unless dead
	}
	dead = f.Exhausted(l.Attempts, l.Created)
	deadArg := "0"
	if dead {
		deadArg = "1"
	}
	n, err := s.run(ctx, failScript, s.keys("queued", "leased", "created", "deadall", "seq", "leases"),
		l.ID, l.Token, strconv.Itoa(l.Attempts), nanos(l.Created), deadArg, nanos(f.Due), f.Error, nanos(f.Now),
		*entry, s.limits.History, s.limits.DeadLetters).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("fail job %q: %w", l.ID, classify(err))
	case n == 0:
		return false, fmt.Errorf("fail job %q: %w", l.ID, store.ErrLeaseLost)
	case n < 0:
		return false, fmt.Errorf("fail job %q: %w", l.ID, errLeaseMismatch)
	}
	return dead, nil
}

// Release queues the job again without counting the attempt. Its due time is
// the one it had, which had come when it was leased: it is due at once.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	if j, ok := s.inboxLease(l); ok {
		if err := s.in.hold(ctx, j); err != nil {
			return fmt.Errorf("release job %q: %w", l.ID, err)
		}
	}
	if s.in != nil {
		defer s.in.queued(l.WebhookID)
	}
	n, err := s.run(ctx, releaseScript, s.keys("queued", "leased", "created", "leases"), l.ID, l.Token).Int()
	if err != nil {
		return fmt.Errorf("release job %q: %w", l.ID, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("release job %q: %w", l.ID, store.ErrLeaseLost)
	}
	return nil
}

// Maintain requeues jobs whose lease ended at or before now,
// dead-letters queued jobs made more than maxAge before now (none when
// maxAge is 0), and removes queued jobs of a deleted webhook that
// DeleteWebhook left, each at most maintainBatch a call. Event ids are
// forgotten by Redis itself when their time is up, so Forgotten is always 0.
func (s *Store) Maintain(ctx context.Context, now time.Time, maxAge time.Duration) (store.Maintenance, error) {
	var m store.Maintenance
	if s.in != nil {
		var err error
		if m.Reclaimed, m.Expired, err = s.in.maintain(ctx, now, maxAge); err != nil {
			return m, fmt.Errorf("maintain: %w", err)
		}
	}
	cutoff := ""
	if maxAge > 0 {
		cutoff = micros(now.Add(-maxAge))
	}
	v, err := s.run(ctx, maintainScript, s.keys("queued", "leased", "created", "deadall", "seq", "leases", "deleting"),
		micros(now), cutoff, store.ExpiredError(maxAge), nanos(now), s.limits.DeadLetters, maintainBatch).Int64Slice()
	if err != nil {
		return store.Maintenance{}, fmt.Errorf("maintain: %w", classify(err))
	}
	if len(v) != 2 {
		return store.Maintenance{}, fmt.Errorf("maintain: got %d counts, want 2", len(v))
	}
	if s.in != nil && v[0] > 0 {
		s.in.queued() // leases of the queue put back: whose, not known
	}
	m.Reclaimed += int(v[0])
	m.Expired += int(v[1])
	return m, nil
}
