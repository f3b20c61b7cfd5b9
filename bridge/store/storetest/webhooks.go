package storetest

import (
	"errors"
	"sort"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// webhook returns a webhook with every field set.
func webhook(id, name string) *rule.Webhook {
	return &rule.Webhook{
		ID:                 id,
		Name:               name,
		URI:                "https://hooks.example.com/" + name + "?token=x",
		Headers:            map[string]string{"Authorization": "Bearer s3cret", "X-Team": "a=b"},
		Actions:            []event.Action{event.Pull, event.Push},
		Status:             rule.Disabled,
		Scope:              "team/*:v1.*",
		Format:             rule.CloudEvents,
		Secret:             "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_dGhpcyBpcyBhIHNlY3JldCBrZXkgb2YgMjQgYnl0ZXM=",
		InsecureSkipVerify: true,
		Source:             rule.FromAPI,
	}
}

// changed is w with every field changed but the ID and the name.
func changed(w *rule.Webhook) *rule.Webhook {
	return &rule.Webhook{
		ID:      w.ID,
		Name:    w.Name,
		URI:     "http://other.example.com/",
		Actions: []event.Action{event.Delete},
		Status:  rule.Enabled,
		Format:  rule.ACR,
		Source:  rule.FromConfig,
	}
}

// renamed is w under another name.
func renamed(w *rule.Webhook, name string) *rule.Webhook {
	c := *w
	c.Name = name
	return &c
}

var webhookCases = func() []testCase {
	a, b := webhook("id-a", "webhooka"), webhook("id-b", "webhookb")
	b.Source, b.Headers, b.Secret = rule.FromConfig, nil, ""
	cases := []struct {
		name    string
		op      func(f *fixture) error
		wantErr error
		want    []*rule.Webhook
	}{
		{"create keeps every field", nil, nil, []*rule.Webhook{a, b}},
		{"create under a taken name conflicts", func(f *fixture) error {
			return f.s.CreateWebhook(f.ctx, webhook("id-c", b.Name))
		}, store.ErrConflict, []*rule.Webhook{a, b}},
		{"create under a taken id conflicts", func(f *fixture) error {
			return f.s.CreateWebhook(f.ctx, webhook(a.ID, "webhookc"))
		}, store.ErrConflict, []*rule.Webhook{a, b}},
		{"update replaces every field", func(f *fixture) error {
			return f.s.UpdateWebhook(f.ctx, changed(a))
		}, nil, []*rule.Webhook{changed(a), b}},
		{"update renames", func(f *fixture) error {
			return f.s.UpdateWebhook(f.ctx, renamed(a, "webhookz"))
		}, nil, []*rule.Webhook{b, renamed(a, "webhookz")}},
		{"update of an unknown id fails", func(f *fixture) error {
			return f.s.UpdateWebhook(f.ctx, webhook("id-c", "webhookc"))
		}, store.ErrNotFound, []*rule.Webhook{a, b}},
		{"update to another's name conflicts", func(f *fixture) error {
			return f.s.UpdateWebhook(f.ctx, renamed(a, b.Name))
		}, store.ErrConflict, []*rule.Webhook{a, b}},
		{"delete", func(f *fixture) error {
			return f.s.DeleteWebhook(f.ctx, a.ID)
		}, nil, []*rule.Webhook{b}},
		{"delete of an unknown id fails", func(f *fixture) error {
			return f.s.DeleteWebhook(f.ctx, "id-c")
		}, store.ErrNotFound, []*rule.Webhook{a, b}},
	}
	var out []testCase
	for _, c := range cases {
		out = append(out, testCase{c.name, func(f *fixture) {
			for _, w := range []*rule.Webhook{a, b} {
				if err := f.s.CreateWebhook(f.ctx, w); err != nil {
					f.t.Fatalf("create %q: %v", w.Name, err)
				}
			}
			if c.op != nil {
				if err := c.op(f); !errors.Is(err, c.wantErr) {
					f.t.Errorf("got error %v, want %v", err, c.wantErr)
				}
			}
			f.wantWebhooks(c.want...)
		}})
	}
	return out
}()

// createWebhook keeps a webhook with every field set and returns it.
func (f *fixture) createWebhook(id, name string) *rule.Webhook {
	f.t.Helper()
	w := webhook(id, name)
	if err := f.s.CreateWebhook(f.ctx, w); err != nil {
		f.t.Fatalf("create webhook %q: %v", name, err)
	}
	return w
}

// wantWebhooks checks the webhooks kept, in any order.
func (f *fixture) wantWebhooks(want ...*rule.Webhook) {
	f.t.Helper()
	got, err := f.s.Webhooks(f.ctx)
	if err != nil {
		f.t.Fatalf("webhooks: %v", err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	if diff := cmpDiff(want, got); diff != "" {
		f.t.Errorf("webhooks (-want +got):\n%s", diff)
	}
}
