package redis_test

import (
	"testing"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

// BenchmarkStore runs the store benchmarks shared with the embedded store
// (storetest.Bench) on the shared Redis, each under a fresh prefix.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, _ := openShared(b)
		return s
	})
}
