package redis_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// configHooks are config-file webhooks with the given names.
func configHooks(names ...string) []*rule.Webhook {
	var out []*rule.Webhook
	for _, n := range names {
		w := &rule.Webhook{Name: n, URI: "http://127.0.0.1/" + n}
		w.Defaults()
		out = append(out, w)
	}
	return out
}

// names lists the webhooks of a Manager's set: "name=id", sorted.
func names(m *webhooks.Manager) []string {
	var out []string
	for _, w := range m.Current().All() {
		out = append(out, w.Name+"="+w.ID)
	}
	sort.Strings(out)
	return out
}

// Processes starting at once on an empty store, each with the same config
// file, all start, and agree on each webhook's id.
func TestConfigWebhooksLoadAtOnce(t *testing.T) {
	_, o := openShared(t)
	const processes = 4
	managers := make([]*webhooks.Manager, processes)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range managers {
		managers[i] = webhooks.New(open(t, o))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := managers[i].Load(context.Background(), configHooks("hooka", "hookb", "hookc")); err != nil {
				t.Errorf("process %d: load: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	want := names(managers[0])
	if len(want) != 3 {
		t.Fatalf("process 0 has webhooks %q, want 3", want)
	}
	for i, m := range managers[1:] {
		if diff := cmp.Diff(want, names(m)); diff != "" {
			t.Errorf("process %d's webhooks (-process 0 +it):\n%s", i+1, diff)
		}
	}
}

// A webhook made, changed or deleted through one process comes in force in
// another that watches (Watch polls every 250ms; the test logs the delay it
// saw rather than failing on a slow machine).
func TestWebhookChangesReachOtherProcesses(t *testing.T) {
	ctx := context.Background()
	s1, o := openShared(t)
	s2 := open(t, o)
	m1, m2 := webhooks.New(s1), webhooks.New(s2)
	for _, m := range []*webhooks.Manager{m1, m2} {
		if err := m.Load(ctx, configHooks("fromfile")); err != nil {
			t.Fatal(err)
		}
	}
	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m2.Watch(watchCtx, webhooks.WatchParams{Store: s2})
	}()
	defer func() { stop(); <-done }()

	made := &rule.Webhook{Name: "madebyapi", URI: "http://127.0.0.1/api", Actions: []event.Action{event.Push}}
	made.Defaults()
	steps := []struct {
		name   string
		change func() error
		want   func(w *rule.Webhook, ok bool) bool
	}{
		{"create", func() (err error) { made, err = m1.Create(ctx, made); return err },
			func(w *rule.Webhook, ok bool) bool { return ok && w.ID == made.ID }},
		{"update", func() error {
			disabled := rule.Disabled
			_, err := m1.Update(ctx, made.Name, webhooks.Patch{Status: &disabled})
			return err
		}, func(w *rule.Webhook, ok bool) bool { return ok && w.Status == rule.Disabled }},
		{"delete", func() error { return m1.Delete(ctx, made.Name) },
			func(_ *rule.Webhook, ok bool) bool { return !ok }},
	}
	for _, step := range steps {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		changed := time.Now()
		for {
			w, ok := m2.Current().ByName(made.Name)
			if step.want(w, ok) {
				break
			}
			if time.Since(changed) > 10*time.Second {
				t.Fatalf("%s through one process: the other does not have it 10s later; it has %q", step.name, names(m2))
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: in force in the other process %v later", step.name, time.Since(changed).Round(time.Millisecond))
	}
	if _, ok := m2.Current().ByName("fromfile"); !ok {
		t.Errorf("the config-file webhook is gone from the watching process: %q", names(m2))
	}
}

// Processes whose config files differ are told so in their logs, and told
// again when they agree.
func TestDifferentConfigFilesAreWarned(t *testing.T) {
	ctx := context.Background()
	s1, o := openShared(t)
	s2 := open(t, o)
	m1, m2 := webhooks.New(s1), webhooks.New(s2)
	if err := m1.Load(ctx, configHooks("hooka")); err != nil {
		t.Fatal(err)
	}
	if err := m2.Load(ctx, configHooks("hooka", "hookb")); err != nil {
		t.Fatal(err)
	}
	log, logs := logtest.NewNullLogger()
	watchCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range []struct {
		m   *webhooks.Manager
		s   *redis.Store
		log logrus.FieldLogger
	}{{m1, s1, log}, {m2, s2, nil}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.m.Watch(watchCtx, webhooks.WatchParams{Store: w.s, Every: 10 * time.Millisecond, AnnounceEvery: 10 * time.Millisecond, Log: w.log})
		}()
	}
	defer func() { stop(); wg.Wait() }()
	waitLog(t, logs, logrus.WarnLevel, "read different config-file webhooks")

	if err := m2.Load(ctx, configHooks("hooka")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, logrus.InfoLevel, "reads the same config-file webhooks again")
}

// waitLog waits for an entry at level whose message contains msg.
func waitLog(t *testing.T, logs *logtest.Hook, level logrus.Level, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range logs.AllEntries() {
			if e.Level == level && strings.Contains(e.Message, msg) {
				return
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, e := range logs.AllEntries() {
				got = append(got, e.Level.String()+": "+e.Message)
			}
			t.Fatalf("no %s log with %q; got %q", level, msg, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
