package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
	"github.com/regwebhook/regwebhook/internal/rediscpu"
)

// BenchmarkStore runs the store benchmarks shared with the embedded store
// (storetest.Bench) on the shared Redis, each under a fresh prefix.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		addr, prefix := redistest.Shared(b)
		return open(b, redis.Options{Addr: addr, Prefix: prefix, AckLinger: benchAckLinger})
	}, redisCPU)
}

// BenchmarkStoreInbox runs them on the store with its inbox
// (docs/redis.md, "Inbox").
func BenchmarkStoreInbox(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		addr, prefix := redistest.Shared(b)
		return open(b, redis.Options{Addr: addr, Prefix: prefix, Inbox: true, AckLinger: benchAckLinger})
	}, redisCPU)
}

// benchAckLinger is the benchmarks' wait of an ack for others: next to
// none. With serve's (16 ms) Ack/serial would time the wait, and the
// server-µs/op of the acks Redis's idle time over it; acks from 16
// goroutines still share their transactions as they come together.
const benchAckLinger = time.Nanosecond

// redisCPU reads the shared Redis's CPU time.
func redisCPU() (time.Duration, error) {
	c := goredis.NewClient(&goredis.Options{Addr: redistest.SharedAddress()})
	defer c.Close()
	return rediscpu.Used(context.Background(), c)
}
