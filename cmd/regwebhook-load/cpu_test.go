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
