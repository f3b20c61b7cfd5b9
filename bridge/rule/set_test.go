package rule

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
)

func TestSetMatch(t *testing.T) {
	hook := func(name, scope string, actions ...event.Action) *Webhook {
		w := &Webhook{ID: "id-" + name, Name: name, URI: "http://x", Scope: scope, Actions: actions}
		w.Defaults()
		return w
	}
	disabled := hook("disabled1", "")
	disabled.Status = Disabled
	set, err := NewSet([]*Webhook{
		hook("everything", ""),
		hook("applatest", "app"),
		hook("appv1only", "app:v1"),
		hook("appalltags", "app:*"),
		hook("teamglob", "team/*:v1.*"),
		hook("pullsonly", "app:*", event.Pull),
		disabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		action    event.Action
		repo, tag string
		want      []string
	}{
		{event.Push, "app", "v1", []string{"appalltags", "appv1only", "everything"}},
		{event.Push, "app", "latest", []string{"appalltags", "applatest", "everything"}},
		{event.Push, "app", "", []string{"appalltags", "everything"}}, // by digest, index child
		{event.Delete, "app", "", []string{"appalltags", "everything"}},
		{event.Pull, "app", "v1", []string{"pullsonly"}},
		{event.Push, "team/web", "v1.4", []string{"everything", "teamglob"}},
		{event.Push, "team/web", "", []string{"everything"}},
		{event.Push, "other", "v1", []string{"everything"}},
	}
	for _, tt := range tests {
		ev := &event.Event{Action: tt.action, Target: event.Target{Repository: tt.repo, Tag: tt.tag}}
		var got []string
		for _, h := range set.Match(ev) {
			got = append(got, h.Name)
		}
		sort.Strings(got)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %s:%s (-want +got):\n%s", tt.action, tt.repo, tt.tag, diff)
		}
	}
}

func TestNewSetRefusesDuplicates(t *testing.T) {
	a := &Webhook{ID: "1", Name: "hookone", URI: "http://x"}
	b := &Webhook{ID: "2", Name: "hookone", URI: "http://y"}
	if _, err := NewSet([]*Webhook{a, b}); err == nil || err.Error() != `webhook name "hookone" is used twice` {
		t.Errorf("NewSet with a name twice: %v", err)
	}
}
