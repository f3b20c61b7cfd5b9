package event_test

import (
	"context"
	"errors"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// benchCases are the captured envelopes the benchmarks decode: one pushed
// manifest (what most envelopes are), a blob push and a pull that regwebhook
// drops, and a tag delete that reads the index.
var benchCases = []string{"push-manifest-by-tag", "push-blob", "pull", "delete-tag"}

func benchBodies(b *testing.B) map[string][][]byte {
	b.Helper()
	out := map[string][][]byte{}
	for _, name := range benchCases {
		c, err := fixtures.Load(name)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range c.Requests {
			out[name] = append(out[name], r.Body)
		}
	}
	return out
}

// BenchmarkDecode is the time to decode an envelope's body and parse each
// of its events, per captured request.
func BenchmarkDecode(b *testing.B) {
	for name, bodies := range benchBodies(b) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				body := bodies[i%len(bodies)]
				i++
				raws, err := event.ParseEnvelope(body)
				if err != nil {
					b.Fatal(err)
				}
				for _, raw := range raws {
					if _, err := event.Parse(raw); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// errRollback ends a benchmark's transaction without committing it, so that
// the index stays as it was and no commit is timed.
var errRollback = errors.New("rollback")

// BenchmarkNormalize is BenchmarkDecode and Normalize against the embedded
// store's index, inside a transaction that is rolled back: the CPU an
// envelope costs before its commit.
func BenchmarkNormalize(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: b.TempDir(), Sync: "normal", Limits: store.Limits{History: 1, DeadLetters: 1}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	for name, bodies := range benchBodies(b) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				body := bodies[i%len(bodies)]
				i++
				err := st.Ingest(ctx, func(tx store.Tx) error {
					raws, err := event.ParseEnvelope(body)
					if err != nil {
						return err
					}
					for _, raw := range raws {
						n, err := event.Parse(raw)
						if err != nil {
							return err
						}
						if _, _, err := event.Normalize(ctx, n, raw, tx); err != nil {
							return err
						}
					}
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					b.Fatal(err)
				}
			}
		})
	}
}
