package rule_test

import (
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// FuzzScope checks scope parsing and matching on any scope and any event
// (repository, tag; "" for an event without a tag):
//   - a scope that parses, printed and parsed again, is the same Scope, with
//     the same String and the same answers;
//   - a scope without globs takes exactly its repository:tag;
//   - an event without a tag is taken only by scopes that take every tag;
//   - a Set with that scope's webhook matches exactly what the scope does
//     (the Set finds plain repositories by lookup, not by Matches).
func FuzzScope(f *testing.F) {
	for _, s := range [][3]string{
		{"", "app", "v1"},
		{"app", "app", "latest"},
		{"app:latest", "app", ""},
		{"app:v1", "app", "v1"},
		{"app:*", "app", ""},
		{"team/app:v1.*", "team/app", "v1.2"},
		{"team/*:v?", "team/app", "v7"},
		{"*/*:*", "team/app", "x"},
		{"*", "app", "latest"},
		{"a:b:c", "a", "b:c"},
		{`app:v\*`, "app", "v*"},
		{`app\:x`, "app:x", "latest"},
		{"app:[a-z]*", "app", "v1"},
		{"app:[", "app", "["},
		{":v1", "", "v1"},
		{"app:", "app", ""},
		{"app :v1", "app ", "v1"},
		{"localhost:5000/app:v1", "localhost", "5000/app:v1"},
		{"ü/ä:ö", "ü/ä", "ö"},
		{"\xff:\xfe", "\xff", "\xfe"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, scope, repo, tag string) {
		sc, err := rule.ParseScope(scope)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("ParseScope(%q): an error without a message", scope)
			}
			return
		}
		printed := sc.String()
		again, err := rule.ParseScope(printed)
		if err != nil {
			t.Fatalf("ParseScope(%q) printed as %q, which does not parse: %v", scope, printed, err)
		}
		if again != sc {
			t.Errorf("ParseScope(%q) = %#v, printed %q and parsed again %#v", scope, sc, printed, again)
		}
		if again.String() != printed {
			t.Errorf("scope %q printed %q, then %q", scope, printed, again.String())
		}
		got := sc.Matches(repo, tag)
		if again.Matches(repo, tag) != got || again.AllTags() != sc.AllTags() {
			t.Errorf("scope %q and its printed form %q answer differently for %q:%q", scope, printed, repo, tag)
		}
		if tag == "" && got && !sc.AllTags() {
			t.Errorf("scope %q takes an event of %q without a tag, but does not take every tag", scope, repo)
		}
		if scope != "" && !strings.ContainsAny(scope, `*?[\`) {
			r, tg, _ := strings.Cut(printed, ":")
			if !sc.Matches(r, tg) {
				t.Errorf("scope %q does not take its own %s:%s", scope, r, tg)
			}
			if want := repo == r && tag == tg; got != want {
				t.Errorf("scope %q (no globs) matches %q:%q = %v, want %v", scope, repo, tag, got, want)
			}
		}

		hook := &rule.Webhook{ID: "id", Name: "fuzzhook", URI: "http://127.0.0.1/", Scope: scope}
		hook.Defaults()
		set, err := rule.NewSet([]*rule.Webhook{hook})
		if err != nil {
			t.Fatalf("NewSet with scope %q: %v", scope, err)
		}
		ev := &event.Event{Action: event.Push, Target: event.Target{Repository: repo, Tag: tag}}
		if inSet := len(set.Match(ev)) == 1; inSet != got {
			t.Errorf("scope %q: Set.Match(%q:%q) = %v, Scope.Matches = %v", scope, repo, tag, inSet, got)
		}
	})
}

// The zero Scope is the empty scope: it takes every event and prints as "".
func TestZeroScope(t *testing.T) {
	var zero rule.Scope
	parsed, err := rule.ParseScope("")
	if err != nil || parsed != zero {
		t.Errorf(`ParseScope("") = %#v, %v; want the zero Scope`, parsed, err)
	}
	if zero.String() != "" || !zero.Matches("team/app", "") || !zero.Matches("app", "v1") || !zero.AllTags() {
		t.Errorf("the zero Scope %q does not take every event", zero.String())
	}
}

// String is the canonical form: the tag is always written.
func TestScopeString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"app", "app:latest"},
		{"app:latest", "app:latest"},
		{"team/app:*", "team/app:*"},
		{"team/*:v1.?", "team/*:v1.?"},
		{"a:b:c", "a:b:c"},
	} {
		sc, err := rule.ParseScope(c.in)
		if err != nil {
			t.Fatalf("ParseScope(%q): %v", c.in, err)
		}
		if got := sc.String(); got != c.want {
			t.Errorf("ParseScope(%q).String() = %q, want %q", c.in, got, c.want)
		}
	}
}
