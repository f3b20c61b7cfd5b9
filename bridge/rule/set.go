package rule

import (
	"fmt"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// Set is a compiled list of webhooks, ready to match events: scopes are
// parsed once, and an event is checked only against the webhooks that may
// take it (see index), so matching costs about the same with ten webhooks
// as with ten thousand. A Set is immutable and safe for concurrent use.
type Set struct {
	idx    index
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
		if h.Status == Enabled {
			s.idx.add(compiled{hook: h, scope: sc})
		}
	}
	s.idx.finish()
	return s, nil
}

// Match returns the enabled webhooks that take ev, in no fixed order; nil
// when none does.
func (s *Set) Match(ev *event.Event) []*Webhook {
	// Collected on the stack first: the answer is then one allocation of
	// the right size, or none.
	var buf [8]*Webhook
	found := buf[:0]
	s.idx.candidates(ev.Target.Repository, ev.Target.Tag, func(cs []compiled) {
		for i := range cs {
			c := &cs[i]
			if c.hook.Takes(ev.Action) && c.scope.Matches(ev.Target.Repository, ev.Target.Tag) {
				found = append(found, c.hook)
			}
		}
	})
	if len(found) == 0 {
		return nil
	}
	return append([]*Webhook(nil), found...)
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
