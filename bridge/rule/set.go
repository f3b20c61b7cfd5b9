package rule

import (
	"fmt"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// Set is a compiled list of webhooks, ready to match events: scopes are
// parsed once, and webhooks with a plain repository are found by lookup.
// A Set is immutable and safe for concurrent use.
type Set struct {
	byRepo map[string][]compiled // scope names one repository
	others []compiled            // empty scope or a repository glob
	byName map[string]*Webhook
	byID   map[string]*Webhook
}

type compiled struct {
	hook  *Webhook
	scope Scope
}

// NewSet compiles webhooks. Each must be valid; a name or ID used twice is an
// error.
func NewSet(hooks []*Webhook) (*Set, error) {
	s := &Set{
		byRepo: map[string][]compiled{},
		byName: make(map[string]*Webhook, len(hooks)),
		byID:   make(map[string]*Webhook, len(hooks)),
	}
	for _, h := range hooks {
		sc, err := ParseScope(h.Scope)
		if err != nil {
			return nil, fmt.Errorf("webhook %q: scope: %w", h.Name, err)
		}
		if _, dup := s.byName[h.Name]; dup {
			return nil, fmt.Errorf("webhook name %q is used twice", h.Name)
		}
		if _, dup := s.byID[h.ID]; dup {
			return nil, fmt.Errorf("webhook id %q is used twice", h.ID)
		}
		s.byName[h.Name], s.byID[h.ID] = h, h
		c := compiled{hook: h, scope: sc}
		if sc.all || sc.repoGlb {
			s.others = append(s.others, c)
		} else {
			s.byRepo[sc.repo] = append(s.byRepo[sc.repo], c)
		}
	}
	return s, nil
}

// Match returns the enabled webhooks that take ev, in no fixed order.
func (s *Set) Match(ev *event.Event) []*Webhook {
	var out []*Webhook
	add := func(cs []compiled) {
		for _, c := range cs {
			if c.hook.Status == Enabled && c.hook.Takes(ev.Action) && c.scope.Matches(ev.Target.Repository, ev.Target.Tag) {
				out = append(out, c.hook)
			}
		}
	}
	add(s.byRepo[ev.Target.Repository])
	add(s.others)
	return out
}

// ByName returns the webhook called name.
func (s *Set) ByName(name string) (*Webhook, bool) {
	h, ok := s.byName[name]
	return h, ok
}

// ByID returns the webhook with internal id.
func (s *Set) ByID(id string) (*Webhook, bool) {
	h, ok := s.byID[id]
	return h, ok
}

// All returns every webhook in the set.
func (s *Set) All() []*Webhook {
	out := make([]*Webhook, 0, len(s.byID))
	for _, h := range s.byID {
		out = append(out, h)
	}
	return out
}
