package receive_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/deliver"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	redisstore "github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// pushWithID returns the captured push of a tagged manifest with its event
// id replaced by id.
func pushWithID(t *testing.T, id string) []byte {
	t.Helper()
	var env map[string][]map[string]any
	if err := json.Unmarshal(mustLoad(t, "push-manifest-by-tag").Requests[0].Body, &env); err != nil {
		t.Fatal(err)
	}
	env["events"][0]["id"] = id
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(h http.Handler, body []byte) int {
	r := httptest.NewRequest(http.MethodPost, "/v1/notifications", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// A commit that fails gives back the places it reserved for hand-offs:
// after a 503, the webhook can still have all its hand-offs reserved (a
// reservation kept would take one for good).
func TestFailedCommitGivesReservationsBack(t *testing.T) {
	ctx := context.Background()
	addr, prefix := redistest.Shared(t)
	open := func() *redisstore.Store {
		s, err := redisstore.Open(ctx, redisstore.Options{Addr: addr, Prefix: prefix, Limits: store.Limits{History: 10, DeadLetters: 10}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	queue, ingest := open(), open()

	hook := hooktest.New(t)
	w := &rule.Webhook{ID: "w", Name: "w", URI: hook.URL()}
	w.Defaults()
	set, err := rule.NewSet([]*rule.Webhook{w})
	if err != nil {
		t.Fatal(err)
	}
	hooks := func() *rule.Set { return set }
	log, _ := test.NewNullLogger()
	const perWebhook = 4
	const reservable = 2 * perWebhook // a round of requests in flight, one waiting
	d := deliver.New(deliver.Params{
		Queue: queue, Hooks: hooks, Sender: deliver.NewSender(deliver.SenderParams{Version: "test", Timeout: 5 * time.Second}),
		Workers: 8, PerWebhook: perWebhook, Log: log,
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	h := receive.New(receive.Params{
		Store: ingest, Hooks: hooks, MaxBodyBytes: 1 << 20, DedupeTTL: time.Hour,
		Wake: d.Wake, Handoff: d, Log: log,
	})

	if code := post(h, pushWithID(t, "first")); code != http.StatusOK {
		t.Fatalf("first push: %d", code)
	}
	hook.WaitFor(t, 1, 10*time.Second) // the webhook is proven
	reserveAll := func() int {
		n := 0
		for ; n <= reservable; n++ {
			if _, ok := d.Reserve("w"); !ok {
				break
			}
		}
		d.Unreserve("w", n)
		return n
	}
	allFree := func(when string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for n := reserveAll(); n != reservable; n = reserveAll() {
			if time.Now().After(deadline) {
				t.Fatalf("%s, %d of the idle webhook's %d hand-offs can be reserved; want all", when, n, reservable)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	allFree("once proven")
	if code := post(h, pushWithID(t, "second")); code != http.StatusOK {
		t.Fatalf("second push: %d", code)
	}
	hook.WaitFor(t, 2, 10*time.Second)
	allFree("after a hand-off")

	ingest.Close() // the receiver's store fails from now on
	if code := post(h, pushWithID(t, "third")); code != http.StatusServiceUnavailable {
		t.Fatalf("push on a closed store: %d, want 503", code)
	}
	allFree("after a failed commit")
}
