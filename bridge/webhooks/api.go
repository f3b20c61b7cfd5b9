package webhooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// What the API changes. Each change is written to the store first and then
// made current, under mu, so the receiver and the workers see it at once and
// never a webhook the store does not have.

// ErrReadOnly is the error of a change to a webhook of the config file: the
// file is where it is changed.
var ErrReadOnly = errors.New("defined in the config file; edit the file and reload (SIGHUP)")

// Patch is a change to some fields of a webhook: those set (non-nil)
// replace the webhook's, the others stay. The name cannot change.
type Patch struct {
	URI *string
	// Headers replaces every custom header; an empty map clears them.
	Headers *map[string]string
	Actions *[]event.Action
	Status  *rule.Status
	Scope   *string
	Format  *rule.Format
	// Secret replaces the secret; "" clears it.
	Secret             *string
	InsecureSkipVerify *bool
}

// Apply returns a copy of w with p's fields set.
func (p Patch) Apply(w *rule.Webhook) *rule.Webhook {
	c := clone(w)
	if p.URI != nil {
		c.URI = *p.URI
	}
	if p.Headers != nil {
		c.Headers = maps.Clone(*p.Headers)
		if len(c.Headers) == 0 {
			c.Headers = nil
		}
	}
	if p.Actions != nil {
		c.Actions = slices.Clone(*p.Actions)
	}
	if p.Status != nil {
		c.Status = *p.Status
	}
	if p.Scope != nil {
		c.Scope = *p.Scope
	}
	if p.Format != nil {
		c.Format = *p.Format
	}
	if p.Secret != nil {
		c.Secret = *p.Secret
	}
	if p.InsecureSkipVerify != nil {
		c.InsecureSkipVerify = *p.InsecureSkipVerify
	}
	return c
}

// List returns every webhook in force, from the config file and the API,
// sorted by name. The webhooks are copies.
func (m *Manager) List() []*rule.Webhook {
	all := m.cur.Load().All()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for i, w := range all {
		all[i] = clone(w)
	}
	return all
}

// Get returns a copy of the webhook called name; store.ErrNotFound when none
// is.
func (m *Manager) Get(name string) (*rule.Webhook, error) {
	w, ok := m.cur.Load().ByName(name)
	if !ok {
		return nil, notFound(name)
	}
	return clone(w), nil
}

// Create makes a webhook through the API: w's missing fields take their
// defaults, and it is validated (a *rule.FieldError says which field is
// wrong). It gets a new internal id and Source api. A name taken, by a
// webhook of the config file or of the API, fails with store.ErrConflict.
// It returns the webhook made.
func (m *Manager) Create(ctx context.Context, w *rule.Webhook) (*rule.Webhook, error) {
	c := clone(w)
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.ID, c.Source = uuid.NewString(), rule.FromAPI
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.cur.Load().ByName(c.Name); taken {
		return nil, fmt.Errorf("create webhook %q: the name is taken: %w", c.Name, store.ErrConflict)
	}
	if err := m.store.CreateWebhook(ctx, c); err != nil {
		return nil, err // it names the webhook
	}
	if err := m.swap(func(all []*rule.Webhook) []*rule.Webhook { return append(all, c) }); err != nil {
		return nil, err
	}
	return clone(c), nil
}

// Update changes the fields p sets of the webhook called name, validates the
// result (a *rule.FieldError says which field is wrong) and returns it. It
// fails with store.ErrNotFound when there is no such webhook and with
// ErrReadOnly when it comes from the config file. Disabling holds the
// webhook's queued jobs; enabling it again releases them.
func (m *Manager) Update(ctx context.Context, name string, p Patch) (*rule.Webhook, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, err := m.changeable(name)
	if err != nil {
		return nil, err
	}
	c := p.Apply(old) // no Defaults: a field emptied by p is invalid, not reset
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := m.store.UpdateWebhook(ctx, c); err != nil {
		return nil, err // it names the webhook
	}
	err = m.swap(func(all []*rule.Webhook) []*rule.Webhook {
		for i, w := range all {
			if w.ID == c.ID {
				all[i] = c
			}
		}
		return all
	})
	if err != nil {
		return nil, err
	}
	return clone(c), nil
}

// Delete deletes the webhook called name with its queued jobs, dead letters
// and history. It fails with store.ErrNotFound when there is no such webhook
// and with ErrReadOnly when it comes from the config file.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, err := m.changeable(name)
	if err != nil {
		return err
	}
	if err := m.store.DeleteWebhook(ctx, old.ID); err != nil {
		return fmt.Errorf("delete webhook %q: %w", name, err)
	}
	return m.swap(func(all []*rule.Webhook) []*rule.Webhook {
		return slices.DeleteFunc(all, func(w *rule.Webhook) bool { return w.ID == old.ID })
	})
}

// changeable returns the webhook called name if the API may change it.
// Call it with mu held.
func (m *Manager) changeable(name string) (*rule.Webhook, error) {
	w, ok := m.cur.Load().ByName(name)
	if !ok {
		return nil, notFound(name)
	}
	if w.Source == rule.FromConfig {
		return nil, fmt.Errorf("webhook %q: %w", name, ErrReadOnly)
	}
	return w, nil
}

// swap makes current the webhooks that change returns, given those now
// current. Call it with mu held.
func (m *Manager) swap(change func([]*rule.Webhook) []*rule.Webhook) error {
	set, err := rule.NewSet(change(m.cur.Load().All()))
	if err != nil {
		return fmt.Errorf("compile webhooks: %w", err)
	}
	m.cur.Store(set)
	return nil
}

func notFound(name string) error {
	return fmt.Errorf("webhook %q: %w", name, store.ErrNotFound)
}

// clone returns a deep copy of w: the Set's webhooks are shared and must not
// change.
func clone(w *rule.Webhook) *rule.Webhook {
	c := *w
	c.Headers = maps.Clone(w.Headers)
	c.Actions = slices.Clone(w.Actions)
	return &c
}
