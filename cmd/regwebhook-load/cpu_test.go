package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/internal/rediscpu"
)

// The CPU time read from /proc for a process follows what the process
// itself counts (getrusage), to the /proc clock tick.
func TestProcCPUFollowsTheProcess(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self0 := selfCPU()
	for selfCPU()-self0 < 200*time.Millisecond {
		for range 100000 {
		}
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < 150*time.Millisecond {
		t.Errorf("after 200ms of CPU, /proc counts %v", got)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Error("a process that does not exist: no error")
	}
}

func TestRedisCPUGrowsWithWork(t *testing.T) {
	addr, prefix := redistest.Shared(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	before, err := rediscpu.Used(ctx, c)
	if err != nil || before <= 0 {
		t.Fatalf("redis CPU: %v, %v", before, err)
	}
	for i := 0; ; i++ {
		now, err := rediscpu.Used(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			return
		}
		if i == 10000 {
			t.Fatalf("redis CPU time stays %v after 10000 writes", now)
		}
		c.Set(ctx, prefix+"k", i, 0)
	}
}

// Redis's counts grow by at least the commands sent, and by a read for
// each when each waits for its answer; a pipeline's commands count too.
// Other tests may share that Redis, so the counts may grow by more, never
// by less (so the few reads of a pipeline are logged, not asserted).
func TestRedisCountsFollowTheCommands(t *testing.T) {
	addr, prefix := redistest.Shared(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	const n = 50
	before, ok := countRedis(ctx, c)
	if !ok {
		t.Fatal("redis counts: not read")
	}
	for i := range n {
		c.Set(ctx, prefix+"k", i, 0)
	}
	after, ok := countRedis(ctx, c)
	if !ok {
		t.Fatal("redis counts: not read")
	}
	one := after.since(before)
	if one.commands < n || one.reads < n {
		t.Errorf("after %d commands one at a time: %d commands, %d reads counted", n, one.commands, one.reads)
	}
	before, _ = countRedis(ctx, c)
	pipe := c.Pipeline()
	for i := range n {
		pipe.Set(ctx, prefix+"k", i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ = countRedis(ctx, c)
	piped := after.since(before)
	if piped.commands < n {
		t.Errorf("after a pipeline of %d commands: %d commands counted", n, piped.commands)
	}
	if _, ok := countRedis(ctx, nil); ok {
		t.Error("no Redis: counted")
	}
	t.Logf("one at a time: %+v; pipelined: %+v", one, piped)
}
