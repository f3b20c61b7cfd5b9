package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/batch"
)

// maxPipeline bounds the scripts sent in one pipeline.
const maxPipeline = 128

// scriptCall is one run of a script, its answer in cmd.
type scriptCall struct {
	ctx    context.Context
	script *script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// newPipeliner returns the Runner through which Ingest's commits run:
// calls made while others are on their way to Redis
// go together in the next pipeline, one write and one read for all, instead
// of a round trip each. Each script still runs whole and alone in Redis, and
// each call returns once its own script has run, with its own answer.
func (s *Store) newPipeliner() *batch.Runner[*scriptCall] {
	return batch.New(maxPipeline, s.runScripts)
}

// runScript runs a script through the pipeliner.
func (s *Store) runScript(ctx context.Context, script *script, keys []string, args ...any) *redis.Cmd {
	c := &scriptCall{ctx: ctx, script: script, keys: keys, args: args}
	if err := s.pipeliner.Do(c); err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	return c.cmd
}

func (s *Store) runScripts(calls []*scriptCall) []error {
	errs := make([]error, len(calls))
	if len(calls) == 1 {
		c := calls[0]
		c.cmd = s.run(c.ctx, c.script, c.keys, c.args...)
		return errs
	}
	// Not one caller's context: a caller that gives up must not cut the
	// others' scripts off. The connection's time-outs bound the pipeline.
	ctx := context.Background()
	pipe := s.c.Pipeline()
	var sent []*scriptCall
	for i, c := range calls {
		if err := c.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		c.cmd = s.call(ctx, pipe, c.script, c.keys, c.args...)
		sent = append(sent, c)
	}
	if len(sent) == 0 {
		return errs
	}
	_, _ = pipe.Exec(ctx) // each command holds its own error
	for _, c := range sent {
		// A Redis that restarted or flushed its functions: run loads them.
		if notLoaded(c.cmd.Err()) {
			c.cmd = s.run(c.ctx, c.script, c.keys, c.args...)
		}
	}
	return errs
}

// histories pushes the history entries of a batch of acks, per webhook, in
// the transaction that acks them; at gives each ack's entry's index in its
// webhook's history once pushed ("" when not pushed: a history keeps at
// most keep entries, so a webhook's newest keep are pushed, the older ones
// would go at once). LPUSH puts them newest first: the entry of the k-th
// ack (from 0) of n of a webhook at index n-1-k.
type histories struct {
	entries map[string][]any
	hooks   []string // in the order first acked
	seen    map[string]int
	keep    int
}

func newHistories(keep int) *histories {
	return &histories{entries: map[string][]any{}, seen: map[string]int{}, keep: keep}
}

// add counts an ack's entry in; all come before the first at.
func (h *histories) add(webhook string, entry []byte) {
	if h.entries[webhook] == nil {
		h.hooks = append(h.hooks, webhook)
	}
	h.entries[webhook] = append(h.entries[webhook], entry)
}

// at returns the index of the next ack's entry of webhook, in the order
// they were added.
func (h *histories) at(webhook string) any {
	var at any = ""
	if n, k := len(h.entries[webhook]), h.seen[webhook]; n-1-k < h.keep {
		at = n - 1 - k
	}
	h.seen[webhook]++
	return at
}

// push adds the LPUSH and LTRIM of each webhook's entries to pipe.
func (h *histories) push(ctx context.Context, s *Store, pipe redis.Pipeliner) {
	for _, w := range h.hooks {
		key := s.key("history:" + w)
		e := h.entries[w]
		pipe.LPush(ctx, key, e[max(0, len(e)-h.keep):]...)
		pipe.LTrim(ctx, key, 0, int64(h.keep-1))
	}
}

// ackCall is one Ack: its job, lease token, webhook and history entry.
type ackCall struct {
	ctx     context.Context
	id      string
	token   string
	webhook string
	entry   []byte
}

// newAcker returns the Runner through which Ack runs: the acks made while
// others are on their way to Redis, or within ackLinger of the first, go in
// one run of ackScript, which acks each job on its own.
func (s *Store) newAcker() *batch.Runner[*ackCall] {
	return batch.NewLinger(maxPipeline, s.ackLinger, s.runAcks)
}

// FlushAcks commits the acks waiting for others now, rather than once
// their wait is out: for a caller that has no more acks to add until these
// commit (the dispatcher, when every ack it allows is waiting).
func (s *Store) FlushAcks() {
	s.acks.Flush()
	if s.in != nil {
		s.in.acks.Flush()
	}
}

// ackLinger is how long an ack waits for others to join its transaction
// (unless Options.AckLinger says otherwise). A transaction costs Redis its
// script run (some 10 µs whatever it acks) and an LPUSH and an LTRIM per
// webhook it has entries of, and regwebhook a write and a read; at 4,000
// deliveries a second most acks would run alone. Waiting 2 ms took a
// quarter off Redis's CPU per delivery at that rate; 16 ms, with
// deliveries spread over 40 webhooks, took off a quarter of Redis's
// commands an envelope serially (23.6 to 17.7) and a seventh with 16
// connections (23.0 to 19.8; docs/benchmarks.md, "Twenty-third round").
// No one waits for an ack: the worker is already free for its next job. A
// full batch (maxPipeline) runs at once, and the dispatcher, which bounds
// the acks waiting, calls FlushAcks when all it allows are waiting: a pool
// of a few workers would otherwise deliver no more than its ack slots
// every 16 ms.
const ackLinger = 16 * time.Millisecond

// runAcks acks calls in one transaction (MULTI/EXEC): per webhook an LPUSH
// of the calls' history entries and an LTRIM, then one run of ackScript,
// which acks each job on its own and takes back the entry of each call
// whose lease was lost. The entries go to Redis as plain LPUSH values, not
// through the script: Redis's Lua hashes every byte of every string a
// script is given, and the entries are most of what an ack sends. A call
// whose lease was lost gets store.ErrLeaseLost.
func (s *Store) runAcks(calls []*ackCall) []error {
	errs := make([]error, len(calls))
	var sent []int // indexes of the calls sent
	// A history keeps at most keep entries (reads return the newest
	// limit): the LTRIM after each LPUSH costs a plain command, and the
	// 16 more keep the newest limit whole when an entry is taken back.
	h := newHistories(s.limits.History + 16)
	for i, c := range calls {
		if err := c.ctx.Err(); err != nil {
			errs[i] = classify(err) // it waited too long for Redis
			continue
		}
		sent = append(sent, i)
		h.add(c.webhook, c.entry)
	}
	if len(sent) == 0 {
		return errs
	}
	ctx := calls[sent[0]].ctx
	if len(sent) > 1 {
		// Not one caller's context: a caller that gives up must not cut
		// the others' acks off. The connection's time-outs bound the call.
		ctx = context.Background()
	}
	args := make([]any, 0, 1+4*len(sent))
	args = append(args, "i")
	for _, i := range sent {
		c := calls[i]
		args = append(args, c.id, c.token, c.webhook, h.at(c.webhook))
	}
	keys := s.keys("leased", "leases")
	pipe := s.c.TxPipeline()
	h.push(ctx, s, pipe)
	cmd := s.call(ctx, pipe, ackScript, keys, args...)
	_, _ = pipe.Exec(ctx) // cmd holds the script's error, or the transaction's
	err := cmd.Err()
	if notLoaded(err) {
		// A Redis that restarted or flushed its functions: the entries
		// are in, the acks not. run loads the functions; the script finds
		// the entries of lost leases by their value, as others may have
		// been pushed since.
		args[0] = "v"
		for k, i := range sent {
			args[1+4*k+3] = calls[i].entry
		}
		cmd = s.run(ctx, ackScript, keys, args...)
		err = cmd.Err()
	}
	var done []int64
	if err == nil {
		done, err = cmd.Int64Slice()
	}
	if err == nil && len(done) != len(sent) {
		err = fmt.Errorf("ackScript answered %d results for %d jobs", len(done), len(sent))
	}
	for k, i := range sent {
		switch {
		case err != nil:
			errs[i] = classify(err)
		case done[k] == 0:
			errs[i] = store.ErrLeaseLost
		}
	}
	return errs
}
