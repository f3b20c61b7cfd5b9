package rule_test

import (
	"fmt"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// matchingScopes are the webhooks every benchmark event is meant for, one
// of each kind the index handles: whatever the number of webhooks, each
// event matches exactly these, so the time per event shows the cost of the
// webhooks that do not match.
var matchingScopes = []string{"match/app:*", "match/app:v1.0", "match/*:v1.*", "*/app:v1.?"}

// benchHooks returns n webhooks: matchingScopes, then fillers in the mix a
// registry with many webhooks has — 90% exact (repository:tag or
// repository:*), 9% globs with a literal prefix (team/*:v1.*), 1% leading
// globs (*/app:*) — none of which the benchmark events match.
func benchHooks(b *testing.B, n int) *rule.Set {
	b.Helper()
	hooks := make([]*rule.Webhook, 0, n)
	for i := range n {
		var scope string
		switch k := (i + 10) % 100; {
		case i < len(matchingScopes):
			scope = matchingScopes[i]
		case k == 0:
			scope = fmt.Sprintf("*/app%d:*", i)
		case k < 10:
			scope = fmt.Sprintf("team%d/*:v1.*", i)
		case i%2 == 0:
			scope = fmt.Sprintf("repo%d:*", i)
		default:
			scope = fmt.Sprintf("repo%d:v%d", i%1000, i)
		}
		h := &rule.Webhook{ID: fmt.Sprint("id", i), Name: fmt.Sprintf("hook%05d", i), URI: "http://127.0.0.1/", Scope: scope}
		h.Defaults()
		hooks = append(hooks, h)
	}
	set, err := rule.NewSet(hooks)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkMatch is the time to match one event against 10, 1,000 and
// 10,000 webhooks; each event matches the same webhooks (matchingScopes:
// four for a push with a tag, two without one), plus an event on a
// repository no webhook names.
func BenchmarkMatch(b *testing.B) {
	events := []event.Event{
		{Action: event.Push, Target: event.Target{Repository: "match/app", Tag: "v1.0"}},
		{Action: event.Push, Target: event.Target{Repository: "match/app"}},
		{Action: event.Push, Target: event.Target{Repository: "nobody/wants", Tag: "v1.0"}},
	}
	want := []int{4, 1, 0}
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint("webhooks=", n), func(b *testing.B) {
			set := benchHooks(b, n)
			for i := range events {
				if got := len(set.Match(&events[i])); got != want[i] {
					b.Fatalf("event %d matched %d webhooks, want %d", i, got, want[i])
				}
			}
			i := 0
			for b.Loop() {
				set.Match(&events[i%len(events)])
				i++
			}
		})
	}
}
