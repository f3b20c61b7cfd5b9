package rule

import (
	"fmt"
	"path"
	"strings"
)

// Scope is a parsed webhook scope: which repositories and tags it takes.
// The zero Scope, which ParseScope("") gives, takes every event of the
// registry.
type Scope struct {
	repo    string // repository, or pattern when repoGlob; "" in the empty scope
	tag     string // tag, or pattern when tagGlob; "*" takes every tag
	repoGlb bool
	tagGlb  bool
}

// ParseScope parses "repository:tag", "repository:*", "repository" (meaning
// "repository:latest") or "" (everything). Both parts may use the globs * and
// ? of path.Match.
func ParseScope(s string) (Scope, error) {
	if s == "" {
		return Scope{}, nil
	}
	repo, tag, hasTag := strings.Cut(s, ":")
	if !hasTag {
		tag = "latest"
	}
	if repo == "" {
		return Scope{}, fmt.Errorf("%q has no repository", s)
	}
	if tag == "" {
		return Scope{}, fmt.Errorf("%q has an empty tag; use %s:* for every tag", s, repo)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Scope{}, fmt.Errorf("%q must not contain spaces", s)
	}
	for _, p := range []string{repo, tag} {
		// path.Match checks the whole pattern even when the name does not match.
		if _, err := path.Match(p, ""); err != nil {
			return Scope{}, fmt.Errorf("%q: bad pattern %q: %v", s, p, err)
		}
	}
	return Scope{
		repo:    repo,
		tag:     tag,
		repoGlb: strings.ContainsAny(repo, `*?[\`),
		tagGlb:  strings.ContainsAny(tag, `*?[\`),
	}, nil
}

// String returns the scope in its canonical form, which ParseScope reads
// back as the same Scope: "" for the empty scope, else "repository:tag"
// with the tag always written ("app" is "app:latest").
func (s Scope) String() string {
	if s.all() {
		return ""
	}
	return s.repo + ":" + s.tag
}

// AllTags reports whether the scope takes every tag of the repositories it
// names, and so events without a tag.
func (s Scope) AllTags() bool { return s.all() || s.tag == "*" }

// all reports whether s is the empty scope: ParseScope never gives another
// an empty repository.
func (s Scope) all() bool { return s.repo == "" }

// Matches reports whether the scope takes an event on repo with tag ("" for
// an event without a tag).
func (s Scope) Matches(repo, tag string) bool {
	if s.all() {
		return true
	}
	if !s.matchRepo(repo) {
		return false
	}
	if tag == "" || s.tag == "*" {
		return s.tag == "*"
	}
	if !s.tagGlb {
		return s.tag == tag
	}
	ok, _ := path.Match(s.tag, tag)
	return ok
}

func (s Scope) matchRepo(repo string) bool {
	if !s.repoGlb {
		return s.repo == repo
	}
	ok, _ := path.Match(s.repo, repo)
	return ok
}
