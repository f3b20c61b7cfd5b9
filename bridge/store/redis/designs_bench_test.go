package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

// The benchmarks here measure queue designs this store does not have, for
// docs/benchmarks-history.md ("Where the rest of the gap is"): the Redis commands
// each would run for what BenchmarkStore's Ingest, Lease and Ack do, and
// Redis's CPU time for them per envelope of storetest.BenchHooks jobs.
// Compare their server-µs/op with BenchmarkStore's Ingest/parallel16 plus
// BenchHooks times Lease/batch1to8 and Ack/parallel16. The commits run
// from 16 goroutines, and from one (serial: compare its
// commit-server-µs/op with Ingest/serial), as the registry sends: each
// commit then is a round trip of its own, whose cost in Redis no layout of
// the keys removes. Left out of both, as cheaper or rarer than what they
// run: retries (a sorted set, on failure only), cutting history back, and
// a replica's heartbeat.

// BenchmarkListQueue: a queue on lists. A commit is one script (the dedupe
// mark, the tag index, each job as one string with SET NX and its id
// RPUSHed to its webhook's list); a lease moves ids with LMOVE, pipelined,
// into the replica's own list and reads the jobs with MGET; an ack is one
// script for a batch (LREM from the replica's list fences it, DEL, LPUSH of
// the history entry).
func BenchmarkListQueue(b *testing.B) {
	b.Run("commits16", func(b *testing.B) { measureDesign(b, 16, listQueue) })
	b.Run("serial", func(b *testing.B) { measureDesign(b, 1, listQueue) })
}

// BenchmarkInbox: an inbox of envelopes. A commit is one script (the
// dedupe mark, the tag index, and one RPUSH of the envelope's jobs as one
// string onto one list); a lease moves envelopes with LMOVE, pipelined,
// into the replica's own list (its leases, taken back when its heartbeat
// stops); an ack is one MULTI for a batch of envelopes: per envelope an
// LREM from the replica's list and an LPUSH of each job's history entry.
// Jobs would go to per-webhook queues (this store's layout) only when
// their webhook is slow or failing, which a run of this shape never has.
func BenchmarkInbox(b *testing.B) {
	b.Run("commits16", func(b *testing.B) { measureDesign(b, 16, inbox) })
	b.Run("serial", func(b *testing.B) { measureDesign(b, 1, inbox) })
}

// BenchmarkInboxByName: BenchmarkInbox with each envelope's jobs under a
// key of their own, which the commit's MULTI SETs before its script, and
// the inbox holding the key's name: the script pushes the name (or
// deletes the key when the envelope was seen), so that the jobs' bytes
// never enter Lua, where Redis hashes every byte of every argument
// (docs/benchmarks-history.md, "Twentieth round"). A lease moves names and reads
// the jobs with MGET; an ack's MULTI also deletes the envelope's key.
func BenchmarkInboxByName(b *testing.B) {
	b.Run("commits16", func(b *testing.B) { measureDesign(b, 16, inboxByName) })
	b.Run("serial", func(b *testing.B) { measureDesign(b, 1, inboxByName) })
}

// design is one queue design's phases: commit envelope i, lease every
// envelope committed (returning how many jobs it leased), ack what it
// leased.
type design func(d *designBench) (commit func(i int) error, lease func() int, ack func())

// designBench is what the designs share: a client of the shared Redis,
// their keys' prefix with its hash tag (p), storetest.BenchHooks webhook
// ids, a job's payload and a history entry of the sizes a delivery's are,
// and the replica's own list.
type designBench struct {
	b              *testing.B
	ctx            context.Context
	c              *goredis.Client
	p, mine        string
	hooks          []string
	payload, entry string
}

// event returns envelope i's event id and its commit's arguments before
// its jobs: prefix, event id, dedupe until (ms), repo, digest, media type,
// tag.
func (d *designBench) event(i int) (string, []any) {
	ev := fmt.Sprintf("e%09d-%s", i, d.p)
	return ev, []any{d.p, ev, time.Now().Add(time.Hour).UnixMilli(), "team/app", "sha256:" + ev,
		"application/vnd.oci.image.manifest.v1+json", "t" + ev}
}

// measureDesign runs a design's commits from conns goroutines, then its
// leases and acks, and reports Redis's CPU time an envelope for each.
func measureDesign(b *testing.B, conns int, run design) {
	addr, prefix := redistest.Shared(b)
	p := "{" + strings.TrimSuffix(prefix, ":") + "}:"
	d := &designBench{b: b, ctx: context.Background(), p: p, mine: p + "mine:bench",
		c:     goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, PoolSize: 32}),
		hooks: make([]string, storetest.BenchHooks), payload: strings.Repeat("x", 600), entry: strings.Repeat("h", 1000)}
	defer d.c.Close()
	for i := range d.hooks {
		d.hooks[i] = fmt.Sprintf("w%d", i)
	}
	commit, lease, ack := run(d)
	var inCommit, inLease, inAck time.Duration
	b.ResetTimer()
	serverPhase(b, &inCommit, func() {
		parallel(conns, b.N, func(i int) {
			if err := commit(i); err != nil {
				b.Error(err)
			}
		})
	})
	var leased int
	serverPhase(b, &inLease, func() { leased = lease() })
	if want := b.N * len(d.hooks); leased != want {
		b.Fatalf("leased %d jobs, want %d", leased, want)
	}
	serverPhase(b, &inAck, ack)
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(per(inCommit+inLease+inAck), "server-µs/op")
	b.ReportMetric(per(inCommit), "commit-server-µs/op")
	b.ReportMetric(per(inLease), "lease-server-µs/op")
	b.ReportMetric(per(inAck), "ack-server-µs/op")
}

// serverPhase runs f and adds the shared Redis's CPU time over it to sum.
func serverPhase(b *testing.B, sum *time.Duration, f func()) {
	before, err := redisCPU()
	if err != nil {
		b.Fatal(err)
	}
	f()
	after, err := redisCPU()
	if err != nil {
		b.Fatal(err)
	}
	*sum += after - before
}

// parallel runs f(0) … f(n-1) on workers goroutines.
func parallel(workers, n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// moveAll moves every value of from(g) to d.mine with LMOVE, 8 a
// pipeline, on goroutines goroutines g, calling each with what each
// pipeline moved, and returns how many values it moved in all.
func (d *designBench) moveAll(goroutines int, from func(g int) string, each func(g int, moved []string)) int {
	var mu sync.Mutex
	var n int
	parallel(goroutines, goroutines, func(g int) {
		for {
			pipe := d.c.Pipeline()
			moves := make([]*goredis.StringCmd, 8)
			for k := range moves {
				moves[k] = pipe.LMove(d.ctx, from(g), d.mine, "LEFT", "RIGHT")
			}
			_, _ = pipe.Exec(d.ctx) // an empty list answers nil
			var got []string
			for _, m := range moves {
				if v, err := m.Result(); err == nil {
					got = append(got, v)
				}
			}
			if len(got) == 0 {
				return
			}
			each(g, got)
			mu.Lock()
			n += len(got)
			mu.Unlock()
		}
	})
	return n
}

func listQueue(d *designBench) (func(int) error, func() int, func()) {
	type job struct{ id, hook string }
	var leased []job
	commit := func(i int) error {
		ev, args := d.event(i)
		for _, h := range d.hooks {
			args = append(args, "job-"+ev+h, h, d.payload)
		}
		return listCommit.Run(d.ctx, d.c, nil, args...).Err()
	}
	var mu sync.Mutex
	lease := func() int {
		// Two goroutines a webhook, each reading the jobs it moved.
		return d.moveAll(2*len(d.hooks), func(g int) string { return d.p + "rq:" + d.hooks[g%len(d.hooks)] },
			func(g int, ids []string) {
				keys := make([]string, len(ids))
				for k, id := range ids {
					keys[k] = d.p + "job:" + id
				}
				if err := d.c.MGet(d.ctx, keys...).Err(); err != nil {
					d.b.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, id := range ids {
					leased = append(leased, job{id, d.hooks[g%len(d.hooks)]})
				}
			})
	}
	ack := func() {
		const batch = 16
		parallel(8, (len(leased)+batch-1)/batch, func(i int) {
			args := []any{d.p, d.mine}
			for _, j := range leased[i*batch : min((i+1)*batch, len(leased))] {
				args = append(args, j.id, j.hook, d.entry)
			}
			if err := listAck.Run(d.ctx, d.c, nil, args...).Err(); err != nil {
				d.b.Error(err)
			}
		})
	}
	return commit, lease, ack
}

func inbox(d *designBench) (func(int) error, func() int, func()) {
	box := d.p + "inbox"
	var leased []string
	commit := func(i int) error {
		ev, args := d.event(i)
		return inboxCommit.Run(d.ctx, d.c, []string{box}, append(args, d.jobs(ev))...).Err()
	}
	var mu sync.Mutex
	lease := func() int {
		d.moveAll(8, func(int) string { return box }, func(_ int, blobs []string) {
			mu.Lock()
			defer mu.Unlock()
			leased = append(leased, blobs...)
		})
		return len(leased) * len(d.hooks)
	}
	ack := func() { d.ackEnvelopes(leased, nil) }
	return commit, lease, ack
}

// jobs is envelope ev's jobs as one string.
func (d *designBench) jobs(ev string) string {
	var b strings.Builder
	for _, h := range d.hooks {
		fmt.Fprintf(&b, "job-%s%s:%s:%d:%s", ev, h, h, len(d.payload), d.payload)
	}
	return b.String()
}

// ackEnvelopes acks the leased envelopes, a MULTI for each 4 (16 jobs, as
// BenchmarkListQueue acks): per envelope an LREM from the replica's list,
// what also adds for it (when not nil), and an LPUSH of each job's history
// entry.
func (d *designBench) ackEnvelopes(leased []string, also func(pipe goredis.Pipeliner, envelope string)) {
	const batch = 4
	parallel(8, (len(leased)+batch-1)/batch, func(i int) {
		_, err := d.c.TxPipelined(d.ctx, func(pipe goredis.Pipeliner) error {
			for _, e := range leased[i*batch : min((i+1)*batch, len(leased))] {
				pipe.LRem(d.ctx, d.mine, 1, e)
				if also != nil {
					also(pipe, e)
				}
				for _, h := range d.hooks {
					pipe.LPush(d.ctx, d.p+"history:"+h, d.entry)
				}
			}
			return nil
		})
		if err != nil {
			d.b.Error(err)
		}
	})
}

func inboxByName(d *designBench) (func(int) error, func() int, func()) {
	box := d.p + "inbox"
	if err := inboxNameCommit.Load(d.ctx, d.c).Err(); err != nil {
		d.b.Fatal(err)
	}
	var leased []string
	commit := func(i int) error {
		ev, args := d.event(i)
		key := d.p + "e:" + ev
		_, err := d.c.TxPipelined(d.ctx, func(pipe goredis.Pipeliner) error {
			pipe.Set(d.ctx, key, d.jobs(ev), 0)
			inboxNameCommit.EvalSha(d.ctx, pipe, []string{box, key}, args...)
			return nil
		})
		return err
	}
	var mu sync.Mutex
	lease := func() int {
		d.moveAll(8, func(int) string { return box }, func(_ int, names []string) {
			if err := d.c.MGet(d.ctx, names...).Err(); err != nil {
				d.b.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			leased = append(leased, names...)
		})
		return len(leased) * len(d.hooks)
	}
	ack := func() {
		d.ackEnvelopes(leased, func(pipe goredis.Pipeliner, name string) { pipe.Del(d.ctx, name) })
	}
	return commit, lease, ack
}

// The scripts' tag index and dedupe mark are those of this store's commit.
const commitHead = `
local P = ARGV[1]
if redis.call('EXISTS', P .. 'seen:' .. ARGV[2]) == 1 then return 0 end
redis.call('SET', P .. 'seen:' .. ARGV[2], '1', 'PXAT', ARGV[3])
local repo, digest, mt, tag = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
redis.call('HSET', P .. 'manifests:' .. repo, digest, mt)
local old = redis.call('HGET', P .. 'tags:' .. repo, tag)
if old then redis.call('SREM', P .. 'tagsof:' .. repo .. '@' .. string.match(old, '^[^\n]*'), tag) end
redis.call('HSET', P .. 'tags:' .. repo, tag, digest .. '\n' .. mt)
redis.call('SADD', P .. 'tagsof:' .. repo .. '@' .. digest, tag)
`

// listCommit is BenchmarkListQueue's commit of one envelope.
// ARGV: prefix, event id, dedupe until (ms), repo, digest, media type, tag,
// then per job: id, webhook id, job (one string).
var listCommit = goredis.NewScript(commitHead + `
for i = 8, #ARGV, 3 do
  if redis.call('SET', P .. 'job:' .. ARGV[i], ARGV[i + 2], 'NX') then
    redis.call('RPUSH', P .. 'rq:' .. ARGV[i + 1], ARGV[i])
  end
end
return 1
`)

// listAck is BenchmarkListQueue's ack of a batch of jobs.
// ARGV: prefix, the replica's list, then per job: id, webhook id, history
// entry. Returns per job 1 done, 0 not held.
var listAck = goredis.NewScript(`
local P, mine = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 3 do
  if redis.call('LREM', mine, 1, ARGV[i]) == 1 then
    redis.call('DEL', P .. 'job:' .. ARGV[i])
    redis.call('LPUSH', P .. 'history:' .. ARGV[i + 1], ARGV[i + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`)

// inboxCommit is BenchmarkInbox's commit of one envelope.
// KEYS: the inbox. ARGV: prefix, event id, dedupe until (ms), repo, digest,
// media type, tag, the envelope's jobs (one string).
var inboxCommit = goredis.NewScript(commitHead + `
redis.call('RPUSH', KEYS[1], ARGV[8])
return 1
`)

// inboxNameCommit is BenchmarkInboxByName's commit of one envelope, whose
// jobs its MULTI has SET under their key.
// KEYS: the inbox, the jobs' key. ARGV: as inboxCommit's, but the jobs.
var inboxNameCommit = goredis.NewScript(strings.Replace(commitHead,
	"then return 0 end", "then redis.call('DEL', KEYS[2]) return 0 end", 1) + `
redis.call('RPUSH', KEYS[1], KEYS[2])
return 1
`)
