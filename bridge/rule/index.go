package rule

import (
	"slices"
	"strings"
)

// index finds the webhooks that may take an event on a repository and tag,
// so that Match checks those only, not every webhook. Each enabled
// webhook's scope is filed in one place:
//
//   - a plain repository and a plain tag: by (repository, tag), one lookup;
//   - a plain repository and a tag glob or *: by repository, one lookup;
//   - a repository glob with a literal prefix (team/*:v1.*): by that
//     prefix. An event's repository looks up each of its own prefixes that
//     has that length, one lookup per distinct prefix length (a few, however
//     many webhooks);
//   - a repository glob without a literal prefix but with a literal suffix
//     (*/app:*): by that suffix, the same way from the end;
//   - the empty scope, and globs with neither (*, *app*): scanned, each
//     checked in turn.
//
// Every place holds candidates only: Match still checks each with
// Scope.Matches, so the index can only make matching faster, never
// different. A repository name is at most a few hundred bytes, so the
// distinct lengths are few.
type index struct {
	byRepoTag  map[repoTag][]compiled
	byRepo     map[string][]compiled
	byPrefix   map[string][]compiled
	prefixLens []int // the distinct lengths of byPrefix's keys, ascending
	bySuffix   map[string][]compiled
	suffixLens []int
	scan       []compiled
}

// repoTag is a plain repository and a plain tag.
type repoTag struct{ repo, tag string }

// globChars start a glob construct in path.Match patterns.
const globChars = `*?[\`

func (x *index) add(c compiled) {
	sc := c.scope
	switch {
	case sc.all():
		x.scan = append(x.scan, c)
	case !sc.repoGlb && !sc.tagGlb && sc.tag != "*":
		if x.byRepoTag == nil {
			x.byRepoTag = map[repoTag][]compiled{}
		}
		k := repoTag{sc.repo, sc.tag}
		x.byRepoTag[k] = append(x.byRepoTag[k], c)
	case !sc.repoGlb:
		if x.byRepo == nil {
			x.byRepo = map[string][]compiled{}
		}
		x.byRepo[sc.repo] = append(x.byRepo[sc.repo], c)
	default:
		if p := literalPrefix(sc.repo); p != "" {
			if x.byPrefix == nil {
				x.byPrefix = map[string][]compiled{}
			}
			x.byPrefix[p] = append(x.byPrefix[p], c)
		} else if s := literalSuffix(sc.repo); s != "" {
			if x.bySuffix == nil {
				x.bySuffix = map[string][]compiled{}
			}
			x.bySuffix[s] = append(x.bySuffix[s], c)
		} else {
			x.scan = append(x.scan, c)
		}
	}
}

// finish computes the distinct key lengths once every webhook is added.
func (x *index) finish() {
	x.prefixLens = keyLens(x.byPrefix)
	x.suffixLens = keyLens(x.bySuffix)
}

func keyLens(m map[string][]compiled) []int {
	var lens []int
	for k := range m {
		if !slices.Contains(lens, len(k)) {
			lens = append(lens, len(k))
		}
	}
	slices.Sort(lens)
	return lens
}

// candidates calls fn with each list of webhooks that may take an event on
// repo with tag ("" when the event has none); a webhook is in one list only.
func (x *index) candidates(repo, tag string, fn func([]compiled)) {
	if cs := x.byRepoTag[repoTag{repo, tag}]; len(cs) > 0 && tag != "" {
		fn(cs)
	}
	if cs := x.byRepo[repo]; len(cs) > 0 {
		fn(cs)
	}
	for _, n := range x.prefixLens {
		if n > len(repo) {
			break
		}
		if cs := x.byPrefix[repo[:n]]; len(cs) > 0 {
			fn(cs)
		}
	}
	for _, n := range x.suffixLens {
		if n > len(repo) {
			break
		}
		if cs := x.bySuffix[repo[len(repo)-n:]]; len(cs) > 0 {
			fn(cs)
		}
	}
	if len(x.scan) > 0 {
		fn(x.scan)
	}
}

// literalPrefix is the start of a path.Match pattern before its first glob
// construct: every name the pattern matches starts with it.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, globChars); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// literalSuffix is the end of a path.Match pattern after its last glob
// construct, or "" when that cannot be told simply: every name the pattern
// matches ends with it. A character class ends with ], which is literal
// elsewhere, so the suffix stops at a ] too; and a suffix right after an
// escaping \ starts with the escaped character, which is literal.
func literalSuffix(pattern string) string {
	i := strings.LastIndexAny(pattern, globChars+"]")
	return pattern[i+1:]
}
