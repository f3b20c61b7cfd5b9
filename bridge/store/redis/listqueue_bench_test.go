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

// BenchmarkListQueue measures a queue design this store does not have, for
// docs/benchmarks.md ("Where the rest of the gap is"): the Redis commands a
// queue on lists would run for what BenchmarkStore's Ingest, Lease and Ack
// do, and Redis's CPU time for them per envelope of storetest.BenchHooks
// jobs. A commit is one script (the dedupe mark, the tag index, each job
// as one string with SET NX and its id RPUSHed to its webhook's list); a
// lease moves ids with LMOVE, pipelined, into the replica's own list and
// reads the jobs with MGET; an ack is one script for a batch (LREM from the
// replica's list fences it, DEL, LPUSH of the history entry). Left out, as
// cheaper or rarer than these: retries (a sorted set, on failure only),
// cutting history back, and a replica's heartbeat. Compare its
// server-µs/op with BenchmarkStore's Ingest/parallel16 plus BenchHooks
// times Lease/batch1to8 and Ack/parallel16. The commits run from 16
// goroutines, and from one (serial: compare its commit-server-µs/op with
// Ingest/serial), as the registry sends: each commit then is a round trip
// of its own, whose cost in Redis no layout of the keys removes.
func BenchmarkListQueue(b *testing.B) {
	b.Run("commits16", func(b *testing.B) { benchListQueue(b, 16) })
	b.Run("serial", func(b *testing.B) { benchListQueue(b, 1) })
}

// benchListQueue runs BenchmarkListQueue's commits from conns goroutines.
func benchListQueue(b *testing.B, conns int) {
	ctx := context.Background()
	addr, prefix := redistest.Shared(b)
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, PoolSize: 32})
	defer c.Close()
	p := "{" + strings.TrimSuffix(prefix, ":") + "}:"
	mine := p + "mine:bench"
	hooks := make([]string, storetest.BenchHooks)
	for i := range hooks {
		hooks[i] = fmt.Sprintf("w%d", i)
	}
	payload, entry := strings.Repeat("x", 600), strings.Repeat("h", 1000)
	var commit, lease, ack time.Duration
	phase := func(sum *time.Duration, f func()) {
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

	b.ResetTimer()
	phase(&commit, func() {
		parallel(conns, b.N, func(i int) {
			ev := fmt.Sprintf("e%09d-%s", i, prefix)
			args := []any{p, ev, time.Now().Add(time.Hour).UnixMilli(), "team/app", "sha256:" + ev, "application/vnd.oci.image.manifest.v1+json", "t" + ev}
			for _, h := range hooks {
				args = append(args, "job-"+ev+h, h, payload)
			}
			if err := listCommit.Run(ctx, c, nil, args...).Err(); err != nil {
				b.Error(err)
			}
		})
	})
	type job struct{ id, hook string }
	var mu sync.Mutex
	var leased []job
	phase(&lease, func() {
		parallel(2*len(hooks), 2*len(hooks), func(g int) {
			h := hooks[g%len(hooks)]
			for {
				pipe := c.Pipeline()
				moves := make([]*goredis.StringCmd, 8)
				for k := range moves {
					moves[k] = pipe.LMove(ctx, p+"rq:"+h, mine, "LEFT", "RIGHT")
				}
				_, _ = pipe.Exec(ctx) // an empty list answers nil
				var got []job
				var keys []string
				for _, m := range moves {
					if id, err := m.Result(); err == nil {
						got = append(got, job{id, h})
						keys = append(keys, p+"job:"+id)
					}
				}
				if len(got) == 0 {
					return
				}
				if err := c.MGet(ctx, keys...).Err(); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				leased = append(leased, got...)
				mu.Unlock()
			}
		})
	})
	if len(leased) != b.N*len(hooks) {
		b.Fatalf("leased %d jobs, want %d", len(leased), b.N*len(hooks))
	}
	phase(&ack, func() {
		const batch = 16
		parallel(8, (len(leased)+batch-1)/batch, func(i int) {
			args := []any{p, mine}
			for _, j := range leased[i*batch : min((i+1)*batch, len(leased))] {
				args = append(args, j.id, j.hook, entry)
			}
			if err := listAck.Run(ctx, c, nil, args...).Err(); err != nil {
				b.Error(err)
			}
		})
	})
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(per(commit+lease+ack), "server-µs/op")
	b.ReportMetric(per(commit), "commit-server-µs/op")
	b.ReportMetric(per(lease), "lease-server-µs/op")
	b.ReportMetric(per(ack), "ack-server-µs/op")
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

// listCommit is BenchmarkListQueue's commit of one envelope.
// ARGV: prefix, event id, dedupe until (ms), repo, digest, media type, tag,
// then per job: id, webhook id, job (one string).
var listCommit = goredis.NewScript(`
local P = ARGV[1]
if redis.call('EXISTS', P .. 'seen:' .. ARGV[2]) == 1 then return 0 end
redis.call('SET', P .. 'seen:' .. ARGV[2], '1', 'PXAT', ARGV[3])
local repo, digest, mt, tag = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
redis.call('HSET', P .. 'manifests:' .. repo, digest, mt)
local old = redis.call('HGET', P .. 'tags:' .. repo, tag)
if old then redis.call('SREM', P .. 'tagsof:' .. repo .. '@' .. string.match(old, '^[^\n]*'), tag) end
redis.call('HSET', P .. 'tags:' .. repo, tag, digest .. '\n' .. mt)
redis.call('SADD', P .. 'tagsof:' .. repo .. '@' .. digest, tag)
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
