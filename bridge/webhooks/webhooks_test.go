package webhooks_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// fixture is a Manager on a real embedded store in a temporary directory.
type fixture struct {
	ctx context.Context
	dir string
	st  *sqlite.Store
	m   *webhooks.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), dir: t.TempDir()}
	f.open(t)
	return f
}

// open opens the store in f.dir with a new Manager on it, as a restart does.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(f.ctx, sqlite.Options{Dir: f.dir, Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st, f.m = st, webhooks.New(st)
}

// reopen closes the store and opens it again with a new Manager.
func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
}

// load makes hooks the config file's webhooks, failing the test on an error.
func (f *fixture) load(t *testing.T, hooks ...*rule.Webhook) {
	t.Helper()
	if err := f.m.Load(f.ctx, hooks); err != nil {
		t.Fatalf("Load(%s): %v", names(hooks), err)
	}
}

// id is the internal id of the current webhook called name.
func (f *fixture) id(t *testing.T, name string) string {
	t.Helper()
	w, ok := f.m.Current().ByName(name)
	if !ok {
		t.Fatalf("no current webhook %q; current: %s", name, names(f.m.Current().All()))
	}
	if w.ID == "" {
		t.Fatalf("current webhook %q has no id", name)
	}
	return w.ID
}

// enqueue queues n jobs for the webhook with id, as the receiver does.
func (f *fixture) enqueue(t *testing.T, webhookID string, n int) {
	t.Helper()
	now := time.Now()
	err := f.st.Ingest(f.ctx, func(tx store.Tx) error {
		for i := range n {
			job := store.Job{
				ID: fmt.Sprintf("%s-job%d", webhookID, i), WebhookID: webhookID, EventID: fmt.Sprintf("event%d", i),
				Action: "push", Payload: `{}`, ContentType: "application/json", Created: now, Due: now,
			}
			if err := tx.Enqueue(f.ctx, job); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// queued counts the jobs due for each webhook id by leasing them all, as a
// worker would; it leaves them leased.
func (f *fixture) queued(t *testing.T, ids ...string) map[string]int {
	t.Helper()
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1000
	}
	res, err := f.st.Lease(f.ctx, store.LeaseRequest{Now: time.Now(), For: time.Minute, Want: want})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, l := range res.Leases {
		got[l.WebhookID]++
	}
	return got
}

// stored returns the webhooks the store keeps, by name.
func (f *fixture) stored(t *testing.T) []*rule.Webhook {
	t.Helper()
	ws, err := f.st.Webhooks(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// current returns the webhooks in force, by name.
func (f *fixture) current() []*rule.Webhook {
	ws := f.m.Current().All()
	sort.Slice(ws, func(i, j int) bool { return ws[i].Name < ws[j].Name })
	return ws
}

// hook is a config webhook as config.Load makes it: defaults filled in.
func hook(name, uri string) *rule.Webhook {
	w := &rule.Webhook{Name: name, URI: uri}
	w.Defaults()
	return w
}

// kept is how the store keeps config webhook w under id.
func kept(w *rule.Webhook, id string) *rule.Webhook {
	c := *w
	c.ID, c.Source = id, rule.FromConfig
	return &c
}

func names(ws []*rule.Webhook) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.Name)
	}
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}

// A config webhook loaded again — after a SIGHUP, after a restart, with a
// changed field — keeps its internal id, so its queued jobs stay its own, and
// a change to it is stored and in force.
func TestLoadKeepsIDs(t *testing.T) {
	a, b := hook("hooka", "http://a.example.com/"), hook("hookb", "http://b.example.com/")
	bMoved := hook("hookb", "http://b2.example.com/new")
	bMoved.Scope = "team/*:v1"
	for _, tc := range []struct {
		name   string
		reopen bool
		then   []*rule.Webhook
	}{
		{"the same file again", false, []*rule.Webhook{a, b}},
		{"the same file after a restart", true, []*rule.Webhook{a, b}},
		{"in another order", false, []*rule.Webhook{b, a}},
		{"a changed uri and scope", false, []*rule.Webhook{a, bMoved}},
		{"a changed uri and scope after a restart", true, []*rule.Webhook{a, bMoved}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.load(t, a, b)
			ids := map[string]string{"hooka": f.id(t, "hooka"), "hookb": f.id(t, "hookb")}
			if ids["hooka"] == ids["hookb"] {
				t.Fatalf("two webhooks share the id %q", ids["hooka"])
			}
			f.enqueue(t, ids["hooka"], 3)
			f.enqueue(t, ids["hookb"], 2)
			if tc.reopen {
				f.reopen(t)
			}

			f.load(t, tc.then...)

			var want []*rule.Webhook
			for _, w := range tc.then {
				want = append(want, kept(w, ids[w.Name]))
			}
			sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
			if diff := cmp.Diff(want, f.stored(t)); diff != "" {
				t.Errorf("stored webhooks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, f.current()); diff != "" {
				t.Errorf("current webhooks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]int{ids["hooka"]: 3, ids["hookb"]: 2}, f.queued(t, ids["hooka"], ids["hookb"])); diff != "" {
				t.Errorf("queued jobs by webhook id (-want +got):\n%s", diff)
			}
		})
	}
}

// A webhook gone from the config file is deleted with its queued jobs; the
// others keep theirs.
func TestLoadDeletesRemoved(t *testing.T) {
	f := newFixture(t)
	a, b := hook("hooka", "http://a.example.com/"), hook("hookb", "http://b.example.com/")
	f.load(t, a, b)
	idA, idB := f.id(t, "hooka"), f.id(t, "hookb")
	f.enqueue(t, idA, 3)
	f.enqueue(t, idB, 2)

	f.load(t, a)

	if diff := cmp.Diff([]*rule.Webhook{kept(a, idA)}, f.stored(t)); diff != "" {
		t.Errorf("stored webhooks (-want +got):\n%s", diff)
	}
	if _, ok := f.m.Current().ByID(idB); ok {
		t.Errorf("removed webhook %q (id %s) is still current", b.Name, idB)
	}
	depth, err := f.st.Depth(f.ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.Depth{Ready: 3}, depth); diff != "" {
		t.Errorf("depth (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{idA: 3}, f.queued(t, idA, idB)); diff != "" {
		t.Errorf("queued jobs by webhook id (-want +got):\n%s", diff)
	}
}

// A webhook deleted from the file and added again under the same name is a
// new webhook: a new id, none of the old one's jobs.
func TestLoadReaddedGetsNewID(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) {
			f := newFixture(t)
			a := hook("hooka", "http://a.example.com/")
			f.load(t, a)
			oldID := f.id(t, "hooka")
			f.enqueue(t, oldID, 3)

			f.load(t)
			if reopen {
				f.reopen(t)
			}
			f.load(t, a)

			newID := f.id(t, "hooka")
			if newID == oldID {
				t.Fatalf("re-added webhook has its old id %q", oldID)
			}
			if diff := cmp.Diff([]*rule.Webhook{kept(a, newID)}, f.stored(t)); diff != "" {
				t.Errorf("stored webhooks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]int{}, f.queued(t, oldID, newID)); diff != "" {
				t.Errorf("queued jobs by webhook id (-want +got):\n%s", diff)
			}
		})
	}
}

// Webhooks made through the API stay beside the file's, and a name in the
// file that the API also made is refused: Load fails, saying so, and nothing
// changes, neither in the store nor in force.
func TestLoadAPIWebhooks(t *testing.T) {
	f := newFixture(t)
	api := hook("sharedname", "http://api.example.com/")
	api.ID, api.Source = "api-made-id", rule.FromAPI
	if err := f.st.CreateWebhook(f.ctx, api); err != nil {
		t.Fatal(err)
	}
	a, b := hook("hooka", "http://a.example.com/"), hook("hookb", "http://b.example.com/")
	f.load(t, a)
	idA := f.id(t, "hooka")
	want := []*rule.Webhook{kept(a, idA), api}
	if diff := cmp.Diff(want, f.current()); diff != "" {
		t.Fatalf("current webhooks (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		file []*rule.Webhook
	}{
		{"alone", []*rule.Webhook{hook("sharedname", "http://file.example.com/")}},
		{"after a changed and a new webhook", []*rule.Webhook{
			hook("hooka", "http://a2.example.com/"), b, hook("sharedname", "http://file.example.com/")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.m.Load(f.ctx, tc.file)
			const wantErr = `webhook "sharedname" is in the config file and was also made through the API; delete one of them`
			if err == nil || err.Error() != wantErr {
				t.Errorf("Load(%s) = %v, want %s", names(tc.file), err, wantErr)
			}
			if diff := cmp.Diff(want, f.stored(t)); diff != "" {
				t.Errorf("stored webhooks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, f.current()); diff != "" {
				t.Errorf("current webhooks (-want +got):\n%s", diff)
			}
		})
	}
}
