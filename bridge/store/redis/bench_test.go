package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

// BenchmarkStore runs the store benchmarks shared with the embedded store
// (storetest.Bench) on the shared Redis, each under a fresh prefix.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, _ := openShared(b)
		return s
	}, redisCPU)
}

// redisCPU reads the shared Redis's CPU time, user and system, from INFO cpu.
func redisCPU() (time.Duration, error) {
	c := goredis.NewClient(&goredis.Options{Addr: redistest.SharedAddr})
	defer c.Close()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			s, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", name, err)
			}
			total += s
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}
