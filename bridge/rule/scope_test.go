package rule

import (
	"testing"
)

func TestScopeMatches(t *testing.T) {
	tests := []struct {
		scope, repo, tag string
		want             bool
	}{
		// empty scope: everything, with or without a tag
		{"", "app", "v1", true},
		{"", "team/app", "", true},
		// repository alone means repository:latest
		{"app", "app", "latest", true},
		{"app", "app", "v1", false},
		{"app", "app", "", false},
		// repository:tag
		{"app:v1", "app", "v1", true},
		{"app:v1", "app", "v2", false},
		{"app:v1", "other", "v1", false},
		{"app:v1", "app", "", false},
		// repository:* takes every tag and events without one
		{"app:*", "app", "v1", true},
		{"app:*", "app", "", true},
		{"app:*", "apps", "v1", false},
		// globs in the tag
		{"app:v1.*", "app", "v1.2", true},
		{"app:v1.*", "app", "v2.0", false},
		{"app:v1.*", "app", "", false}, // tagless events only for scopes that take every tag
		{"app:v?", "app", "v7", true},
		{"app:v?", "app", "v10", false},
		// globs in the repository; * does not cross /
		{"team/*:v1", "team/app", "v1", true},
		{"team/*:v1", "team/sub/app", "v1", false},
		{"team/*:v1", "other/app", "v1", false},
		{"team/*:*", "team/app", "", true},
		{"*:*", "app", "", true},
		{"*:*", "team/app", "x", false},
		{"*/*:*", "team/app", "x", true},
		{"*", "app", "latest", true},
		{"*", "app", "v1", false},
	}
	for _, tt := range tests {
		s, err := ParseScope(tt.scope)
		if err != nil {
			t.Fatalf("ParseScope(%q): %v", tt.scope, err)
		}
		if got := s.Matches(tt.repo, tt.tag); got != tt.want {
			t.Errorf("scope %q matches %s:%s = %v, want %v", tt.scope, tt.repo, tt.tag, got, tt.want)
		}
	}
}

func TestParseScopeErrors(t *testing.T) {
	tests := []struct{ scope, want string }{
		{":v1", `":v1" has no repository`},
		{"app:", `"app:" has an empty tag; use app:* for every tag`},
		{"app :v1", `"app :v1" must not contain spaces`},
		{"app:[v1", `"app:[v1": bad pattern "[v1": syntax error in pattern`},
		{"te[am:v1", `"te[am:v1": bad pattern "te[am": syntax error in pattern`},
	}
	for _, tt := range tests {
		_, err := ParseScope(tt.scope)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseScope(%q) = %v, want %s", tt.scope, err, tt.want)
		}
	}
}
