package webhooks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// apiFixture is a Manager on a real embedded store with one config-file
// webhook, "fromconfig", loaded.
type apiFixture struct {
	t   *testing.T
	ctx context.Context
	dir string
	st  *sqlite.Store
	m   *webhooks.Manager
}

var configHook = &rule.Webhook{Name: "fromconfig", URI: "http://config.example.com/", Actions: []event.Action{event.Push},
	Status: rule.Enabled, Format: rule.ACR}

func newAPIFixture(t *testing.T) *apiFixture {
	f := &apiFixture{t: t, ctx: context.Background(), dir: t.TempDir()}
	f.restart()
	return f
}

// restart opens the store (closing the one open) with a new Manager, and
// loads the config webhook, as serve does.
func (f *apiFixture) restart() {
	f.t.Helper()
	if f.st != nil {
		if err := f.st.Close(); err != nil {
			f.t.Fatal(err)
		}
	}
	st, err := sqlite.Open(f.ctx, sqlite.Options{Dir: f.dir, Limits: store.Limits{History: 10, DeadLetters: 10}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	f.st, f.m = st, webhooks.New(st)
	if err := f.m.Load(f.ctx, []*rule.Webhook{configHook}); err != nil {
		f.t.Fatal(err)
	}
}

// create makes a webhook through the Manager, failing the test on an error.
func (f *apiFixture) create(w *rule.Webhook) *rule.Webhook {
	f.t.Helper()
	got, err := f.m.Create(f.ctx, w)
	if err != nil {
		f.t.Fatalf("create %q: %v", w.Name, err)
	}
	return got
}

// wantHooks checks that the store, the current set and List all hold want
// (sorted by name), ids included.
func (f *apiFixture) wantHooks(want ...*rule.Webhook) {
	f.t.Helper()
	stored, err := f.st.Webhooks(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	opts := cmpopts.EquateEmpty()
	if diff := cmp.Diff(want, stored, opts); diff != "" {
		f.t.Errorf("stored webhooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.m.List(), opts); diff != "" {
		f.t.Errorf("listed webhooks (-want +got):\n%s", diff)
	}
	for _, w := range want {
		cur, ok := f.m.Current().ByID(w.ID)
		if !ok {
			f.t.Errorf("webhook %q is not current", w.Name)
		} else if diff := cmp.Diff(w, cur, opts); diff != "" {
			f.t.Errorf("current webhook %q (-want +got):\n%s", w.Name, diff)
		}
	}
}

// configKept is configHook as the store keeps it.
func (f *apiFixture) configKept() *rule.Webhook {
	f.t.Helper()
	w, err := f.m.Get(configHook.Name)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

func ptr[T any](v T) *T { return &v }

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestCreate(t *testing.T) {
	f := newAPIFixture(t)
	cfg := f.configKept()
	got := f.create(&rule.Webhook{Name: "madebyapi", URI: "https://hooks.example.com/x", Scope: "app:*",
		Headers: map[string]string{"Authorization": "Bearer s3cret"}, Secret: secret})
	if got.ID == "" || got.ID == cfg.ID {
		t.Fatalf("created webhook has id %q, want a new one", got.ID)
	}
	want := &rule.Webhook{ID: got.ID, Name: "madebyapi", URI: "https://hooks.example.com/x", Scope: "app:*",
		Headers: map[string]string{"Authorization": "Bearer s3cret"}, Secret: secret,
		Actions: []event.Action{event.Push, event.Delete}, Status: rule.Enabled, Format: rule.ACR, Source: rule.FromAPI}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	f.wantHooks(cfg, want)
	ev := &event.Event{Action: event.Push, Target: event.Target{Repository: "app", Tag: "v1"}}
	if matched := f.m.Current().Match(ev); len(matched) != 2 {
		t.Errorf("a push of app:v1 matches %d webhooks, want 2 (the new one is in force)", len(matched))
	}

	f.restart()
	f.wantHooks(cfg, want)
}

func TestCreateRefuses(t *testing.T) {
	for _, c := range []struct {
		name      string
		hook      *rule.Webhook
		wantErr   error
		wantField string
	}{
		{"the name of a config webhook", &rule.Webhook{Name: "fromconfig", URI: "http://a.example.com/"}, store.ErrConflict, ""},
		{"the name of an API webhook", &rule.Webhook{Name: "madebyapi", URI: "http://a.example.com/"}, store.ErrConflict, ""},
		{"a bad name", &rule.Webhook{Name: "Bad-Name", URI: "http://a.example.com/"}, nil, "name"},
		{"no uri", &rule.Webhook{Name: "another"}, nil, "uri"},
		{"a reserved header", &rule.Webhook{Name: "another", URI: "http://a.example.com/",
			Headers: map[string]string{"X-Regwebhook-Delivery": "x"}}, nil, "headers"},
		{"a bad secret", &rule.Webhook{Name: "another", URI: "http://a.example.com/", Secret: "s3cret"}, nil, "secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newAPIFixture(t)
			made := f.create(&rule.Webhook{Name: "madebyapi", URI: "http://api.example.com/"})
			_, err := f.m.Create(f.ctx, c.hook)
			checkErr(t, err, c.wantErr, c.wantField)
			f.wantHooks(f.configKept(), made)
		})
	}
}

// checkErr checks that err is wantErr, or a *rule.FieldError of wantField.
func checkErr(t *testing.T, err, wantErr error, wantField string) {
	t.Helper()
	if wantField != "" {
		var fe *rule.FieldError
		if !errors.As(err, &fe) || fe.Field != wantField {
			t.Errorf("got error %v, want one about field %q", err, wantField)
		}
		return
	}
	if !errors.Is(err, wantErr) {
		t.Errorf("got error %v, want %v", err, wantErr)
	}
}

func TestUpdate(t *testing.T) {
	orig := &rule.Webhook{Name: "madebyapi", URI: "https://hooks.example.com/x", Scope: "app:*",
		Headers: map[string]string{"Authorization": "Bearer s3cret", "X-Team": "a"}, Secret: secret}
	for _, c := range []struct {
		name   string
		patch  webhooks.Patch
		change func(w *rule.Webhook)
	}{
		{"nothing", webhooks.Patch{}, func(*rule.Webhook) {}},
		{"uri and scope", webhooks.Patch{URI: ptr("http://other.example.com/"), Scope: ptr("")}, func(w *rule.Webhook) {
			w.URI, w.Scope = "http://other.example.com/", ""
		}},
		{"headers replace the whole map", webhooks.Patch{Headers: &map[string]string{"X-New": "1"}}, func(w *rule.Webhook) {
			w.Headers = map[string]string{"X-New": "1"}
		}},
		{"empty headers clear them", webhooks.Patch{Headers: &map[string]string{}}, func(w *rule.Webhook) { w.Headers = nil }},
		{"an empty secret clears it", webhooks.Patch{Secret: ptr("")}, func(w *rule.Webhook) { w.Secret = "" }},
		{"every other field", webhooks.Patch{Actions: &[]event.Action{event.Pull}, Status: ptr(rule.Disabled),
			Format: ptr(rule.CloudEvents), InsecureSkipVerify: ptr(true)}, func(w *rule.Webhook) {
			w.Actions, w.Status, w.Format, w.InsecureSkipVerify = []event.Action{event.Pull}, rule.Disabled, rule.CloudEvents, true
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newAPIFixture(t)
			made := f.create(orig)
			want := *made
			c.change(&want)
			got, err := f.m.Update(f.ctx, made.Name, c.patch)
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if diff := cmp.Diff(&want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("updated (-want +got):\n%s", diff)
			}
			f.wantHooks(f.configKept(), &want)
			f.restart()
			f.wantHooks(f.configKept(), &want)
		})
	}
}

func TestUpdateRefuses(t *testing.T) {
	for _, c := range []struct {
		name      string
		hook      string
		patch     webhooks.Patch
		wantErr   error
		wantField string
	}{
		{"a config webhook", "fromconfig", webhooks.Patch{Status: ptr(rule.Disabled)}, webhooks.ErrReadOnly, ""},
		{"an unknown webhook", "nosuchhook", webhooks.Patch{Status: ptr(rule.Disabled)}, store.ErrNotFound, ""},
		{"a bad status", "madebyapi", webhooks.Patch{Status: ptr(rule.Status("off"))}, nil, "status"},
		{"an empty status", "madebyapi", webhooks.Patch{Status: ptr(rule.Status(""))}, nil, "status"},
		{"no actions", "madebyapi", webhooks.Patch{Actions: &[]event.Action{}}, nil, "actions"},
		{"a relative uri", "madebyapi", webhooks.Patch{URI: ptr("/hook")}, nil, "uri"},
		{"a bad scope", "madebyapi", webhooks.Patch{Scope: ptr("app:[")}, nil, "scope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newAPIFixture(t)
			made := f.create(&rule.Webhook{Name: "madebyapi", URI: "http://api.example.com/"})
			_, err := f.m.Update(f.ctx, c.hook, c.patch)
			checkErr(t, err, c.wantErr, c.wantField)
			f.wantHooks(f.configKept(), made)
		})
	}
}

// A disabled webhook matches nothing at once; enabled again, it matches.
func TestUpdateStatusTakesEffectAtOnce(t *testing.T) {
	f := newAPIFixture(t)
	f.create(&rule.Webhook{Name: "madebyapi", URI: "http://api.example.com/", Scope: "app:*"})
	ev := &event.Event{Action: event.Push, Target: event.Target{Repository: "app", Tag: "v1"}}
	for _, status := range []rule.Status{rule.Disabled, rule.Enabled} {
		if _, err := f.m.Update(f.ctx, "madebyapi", webhooks.Patch{Status: ptr(status)}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, w := range f.m.Current().Match(ev) {
			names = append(names, w.Name)
		}
		want := map[rule.Status][]string{rule.Disabled: {"fromconfig"}, rule.Enabled: {"fromconfig", "madebyapi"}}[status]
		if diff := cmp.Diff(want, names, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%s: matched (-want +got):\n%s", status, diff)
		}
	}
}

func TestDelete(t *testing.T) {
	f := newAPIFixture(t)
	made := f.create(&rule.Webhook{Name: "madebyapi", URI: "http://api.example.com/"})
	cfg := f.configKept()
	now := time.Now()
	err := f.st.Ingest(f.ctx, func(tx store.Tx) error {
		for _, id := range []string{made.ID, cfg.ID} {
			j := store.Job{ID: "job-" + id, WebhookID: id, EventID: "e", Action: "push", Payload: `{}`, Created: now, Due: now}
			if err := tx.Enqueue(f.ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name    string
		wantErr error
	}{{"fromconfig", webhooks.ErrReadOnly}, {"nosuchhook", store.ErrNotFound}} {
		if err := f.m.Delete(f.ctx, c.name); !errors.Is(err, c.wantErr) {
			t.Errorf("delete %q: got %v, want %v", c.name, err, c.wantErr)
		}
	}
	f.wantHooks(cfg, made)

	if err := f.m.Delete(f.ctx, made.Name); err != nil {
		t.Fatalf("delete: %v", err)
	}
	f.wantHooks(cfg)
	if _, err := f.m.Get(made.Name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get after delete: got %v, want ErrNotFound", err)
	}
	depth, err := f.st.Depth(f.ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.Depth{Ready: 1}, depth); diff != "" {
		t.Errorf("depth after delete: only the config webhook's job stays (-want +got):\n%s", diff)
	}
	// The name is free again, for a new webhook.
	again := f.create(&rule.Webhook{Name: made.Name, URI: "http://api.example.com/"})
	if again.ID == made.ID {
		t.Errorf("made again under the same name, the webhook has its old id")
	}
}

// What Get and List return are copies: changing them changes nothing in
// force.
func TestGetReturnsACopy(t *testing.T) {
	f := newAPIFixture(t)
	made := f.create(&rule.Webhook{Name: "madebyapi", URI: "http://api.example.com/", Headers: map[string]string{"A": "1"}})
	got, err := f.m.Get(made.Name)
	if err != nil {
		t.Fatal(err)
	}
	got.Headers["A"], got.Actions[0], got.URI = "2", event.Pull, "http://changed.example.com/"
	f.m.List()[1].Headers["A"] = "3"
	f.wantHooks(f.configKept(), made)
}
