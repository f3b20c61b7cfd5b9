package receive_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	redisstore "github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite/sqlitetest"
	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// unwanted are the captured requests whose events no webhook of
// pushDeleteHooks takes: blob pushes and pulls, manifest pulls (no webhook
// takes pulls), and mounts.
func unwanted(t *testing.T) [][]byte {
	t.Helper()
	cases, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, c := range cases {
	requests:
		for _, r := range c.Requests {
			raws, err := event.ParseEnvelope(r.Body)
			if err != nil || len(raws) == 0 {
				continue
			}
			for _, raw := range raws {
				n, err := event.Parse(raw)
				if err != nil {
					continue requests
				}
				blobPush := n.Action == "push" && n.Target.MediaType == "application/octet-stream"
				if n.Action != "pull" && n.Action != "mount" && !blobPush {
					continue requests
				}
			}
			out = append(out, r.Body)
		}
	}
	return out
}

func pushDeleteHooks(t *testing.T) *rule.Set {
	t.Helper()
	var hooks []*rule.Webhook
	for _, h := range []struct{ name, scope string }{{"everything", ""}, {"appalltags", "app:*"}} {
		w := &rule.Webhook{ID: "id-" + h.name, Name: h.name, URI: "http://127.0.0.1:1/", Scope: h.scope}
		w.Defaults() // push and delete
		hooks = append(hooks, w)
	}
	set, err := rule.NewSet(hooks)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// postAll posts each body as the registry does, expecting 200.
func postAll(t *testing.T, h http.Handler, bodies [][]byte) {
	t.Helper()
	for _, b := range bodies {
		r := httptest.NewRequest(http.MethodPost, "/v1/notifications", strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("post %s: %d %s", b, w.Code, w.Body)
		}
	}
}

func newHandler(t *testing.T, st receive.Ingester) *receive.Handler {
	log, _ := test.NewNullLogger()
	hooks := pushDeleteHooks(t)
	return receive.New(receive.Params{Store: st, Hooks: func() *rule.Set { return hooks }, MaxBodyBytes: 1 << 20, DedupeTTL: time.Hour, Log: log})
}

// Envelopes of blob, pull and mount events that no webhook wants are
// answered without writing to the embedded store: SQLite's data_version,
// seen from another connection, and the WAL's size stay the same. A pushed
// manifest then changes both, so the probe does see writes.
func TestUnwantedEventsWriteNothingEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHandler(t, st)
	state := sqlitetest.WriteProbe(t, dir)
	bodies := unwanted(t)
	if len(bodies) < 5 {
		t.Fatalf("only %d captured requests of unwanted events", len(bodies))
	}
	v0, w0 := state()
	postAll(t, h, bodies)
	if v, w := state(); v != v0 || w != w0 {
		t.Errorf("after %d envelopes of unwanted events: data_version %d → %d, WAL %d → %d bytes; want no change", len(bodies), v0, v, w0, w)
	}
	push, err := fixtures.Load("push-manifest-by-tag")
	if err != nil {
		t.Fatal(err)
	}
	postAll(t, h, [][]byte{push.Requests[0].Body})
	if v, w := state(); v == v0 || w == w0 {
		t.Errorf("after a pushed manifest: data_version %d → %d, WAL %d → %d bytes; want both changed", v0, v, w0, w)
	}
}

// The same on Redis, on a redis-server of the test's own: no command at all
// reaches it, and no key changes.
func TestUnwantedEventsWriteNothingRedis(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	st, err := redisstore.Open(ctx, redisstore.Options{Addr: srv.Addr, Prefix: "rw:", Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHandler(t, st)
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { probe.Close() })
	// Commands other than the probe's own INFO, and changes to keys.
	state := func() (commands, dirty int64) {
		t.Helper()
		info, err := probe.Info(ctx, "commandstats", "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(info))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "rdb_changes_since_last_save:"); ok {
				dirty, _ = strconv.ParseInt(v, 10, 64)
			}
			if name, stats, ok := strings.Cut(line, ":calls="); ok && strings.HasPrefix(name, "cmdstat_") && name != "cmdstat_info" {
				n, _ := strconv.ParseInt(strings.Split(stats, ",")[0], 10, 64)
				commands += n
			}
		}
		return commands, dirty
	}
	bodies := unwanted(t)
	c0, d0 := state()
	postAll(t, h, bodies)
	if c, d := state(); c != c0 || d != d0 {
		t.Errorf("after %d envelopes of unwanted events: %d → %d commands, %d → %d changes; want no change", len(bodies), c0, c, d0, d)
	}
	push, err := fixtures.Load("push-manifest-by-tag")
	if err != nil {
		t.Fatal(err)
	}
	postAll(t, h, [][]byte{push.Requests[0].Body})
	if c, d := state(); c == c0 || d == d0 {
		t.Errorf("after a pushed manifest: %d → %d commands, %d → %d changes; want both changed", c0, c, d0, d)
	}
}
