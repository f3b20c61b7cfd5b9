package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
)

// scriptCostLib is a function library for BenchmarkScriptCost: one
// function that does nothing, one that runs EXISTS of KEYS[1] ARGV[1]
// times.
const scriptCostLib = `#!lua name=regwebhook_bench_scriptcost
redis.register_function('rwbench_noop', function() return 1 end)
redis.register_function('rwbench_calls', function(keys, args)
  for _ = 1, tonumber(args[1]) do redis.call('EXISTS', keys[1]) end
  return 1
end)
`

// BenchmarkScriptCost measures what Redis spends on the parts of a script
// call (docs/benchmarks-history.md, "Twenty-first round"): its arguments, as many
// and as long as the ingest commit's (34 of an id's length, or 33 and the
// inbox entry's 3,200 bytes); the commands it runs, against the same
// commands sent plainly; and what those bytes cost a plain SET. Each op
// is one call, pipelined 100 at a time; server-µs/op is Redis's CPU time
// (INFO cpu) a call.
func BenchmarkScriptCost(b *testing.B) {
	ctx := context.Background()
	addr, prefix := redistest.Shared(b)
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	if err := c.FunctionLoadReplace(ctx, scriptCostLib).Err(); err != nil {
		b.Fatalf("load the benchmark's functions: %v", err)
	}
	defer c.FunctionDelete(ctx, "regwebhook_bench_scriptcost")
	id := strings.Repeat("0", 36)
	var ids, entry []any
	for range 34 {
		ids = append(ids, id)
	}
	entry = append(append(entry, ids[:33]...), strings.Repeat("x", 3200))
	missing, set := prefix+"missing", prefix+"set"
	for _, bc := range []struct {
		name string
		call func(p goredis.Pipeliner)
	}{
		{"fcall/args1", func(p goredis.Pipeliner) { p.FCall(ctx, "rwbench_noop", nil, "a") }},
		{"fcall/args34", func(p goredis.Pipeliner) { p.FCall(ctx, "rwbench_noop", nil, ids...) }},
		{"fcall/args33+3200B", func(p goredis.Pipeliner) { p.FCall(ctx, "rwbench_noop", nil, entry...) }},
		{"fcall/calls0", func(p goredis.Pipeliner) { p.FCall(ctx, "rwbench_calls", []string{missing}, 0) }},
		{"fcall/calls13", func(p goredis.Pipeliner) { p.FCall(ctx, "rwbench_calls", []string{missing}, 13) }},
		{"plain/set36B", func(p goredis.Pipeliner) { p.Set(ctx, set, id, 0) }},
		{"plain/set3200B", func(p goredis.Pipeliner) { p.Set(ctx, set, entry[33], 0) }},
		{"plain/exists13", func(p goredis.Pipeliner) {
			for range 13 {
				p.Exists(ctx, missing)
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var in time.Duration
			b.ResetTimer()
			serverPhase(b, &in, func() {
				for done := 0; done < b.N; {
					pipe := c.Pipeline()
					n := min(100, b.N-done)
					for range n {
						bc.call(pipe)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						b.Fatal(err)
					}
					done += n
				}
			})
			b.ReportMetric(float64(in.Nanoseconds())/1e3/float64(b.N), "server-µs/op")
		})
	}
}
