package rule

import (
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// The index only narrows which webhooks Match checks: for every event,
// Match must give exactly the webhooks whose scope takes it, whichever
// place of the index each scope is filed in.
func TestMatchIsScopeMatches(t *testing.T) {
	scopes := []string{
		"", "app", "app:v1", "app:*", "app:v1.*", "team/app:v1", "team/app:*",
		"team/*:v1.*", "team/*", "team/a*:*", "t?am/app:*", "te[a-z]m/app:*", `team\/app:*`,
		"*/app:*", "*/app:v1", "*app:*", "*", "*/*:*", "*/[ab]pp:*", `*/ap\p:*`, "*[p]:*", "*/a?p:*",
		"team/*/app:*", "?eam/app:v?",
	}
	var hooks []*Webhook
	for i, sc := range scopes {
		w := &Webhook{ID: fmt.Sprint("id", i), Name: fmt.Sprintf("hook%03d", i), URI: "http://x", Scope: sc}
		w.Defaults()
		hooks = append(hooks, w)
	}
	set, err := NewSet(hooks)
	if err != nil {
		t.Fatal(err)
	}
	repos := []string{"app", "team/app", "team/bpp", "team/web", "tea/app", "x/team/app", "team/x/app", "teamapp", "ap", "a", "p", "team/ap", "team/apq"}
	tags := []string{"", "v1", "v1.2", "latest", "v2"}
	for _, repo := range repos {
		for _, tag := range tags {
			ev := &event.Event{Action: event.Push, Target: event.Target{Repository: repo, Tag: tag}}
			var want, got []string
			for i, sc := range scopes {
				parsed, err := ParseScope(sc)
				if err != nil {
					t.Fatal(err)
				}
				if parsed.Matches(repo, tag) {
					want = append(want, hooks[i].Name)
				}
			}
			for _, h := range set.Match(ev) {
				got = append(got, h.Name)
			}
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s:%s (-want +got):\n%s", repo, tag, diff)
			}
		}
	}
}

func TestLiteralPrefixAndSuffix(t *testing.T) {
	tests := []struct{ pattern, prefix, suffix string }{
		{"team/*", "team/", ""},
		{"*/app", "", "/app"},
		{"team/*/app", "team/", "/app"},
		{"*", "", ""},
		{"*[ab]", "", ""},
		{"*[ab]pp", "", "pp"},
		{`*/ap\p`, "", "p"},
		{`te\am/*`, "te", ""},
		{"?eam/app", "", "eam/app"},
	}
	for _, tt := range tests {
		if got := literalPrefix(tt.pattern); got != tt.prefix {
			t.Errorf("literalPrefix(%q) = %q, want %q", tt.pattern, got, tt.prefix)
		}
		if got := literalSuffix(tt.pattern); got != tt.suffix {
			t.Errorf("literalSuffix(%q) = %q, want %q", tt.pattern, got, tt.suffix)
		}
	}
}
