// Package webhooks keeps the current set of webhooks — those of the config
// file and those made through the API — and gives each its internal id.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Store keeps webhooks durably.
type Store interface {
	Webhooks(ctx context.Context) ([]*rule.Webhook, error)
	CreateWebhook(ctx context.Context, w *rule.Webhook) error
	UpdateWebhook(ctx context.Context, w *rule.Webhook) error
	DeleteWebhook(ctx context.Context, id string) error
}

// Manager holds the compiled webhook set that the receiver and the workers
// read, and changes it together with the store.
type Manager struct {
	store Store
	mu    sync.Mutex // serializes changes
	cur   atomic.Pointer[rule.Set]
	// configHash digests the config file's webhooks last loaded, for Watch.
	configHash atomic.Pointer[string]
}

// New returns a Manager with no webhooks; call Load.
func New(s Store) *Manager {
	m := &Manager{store: s}
	empty, _ := rule.NewSet(nil)
	m.cur.Store(empty)
	return m
}

// Current returns the webhooks now in force. The set is immutable.
func (m *Manager) Current() *rule.Set { return m.cur.Load() }

// Load makes the config file's webhooks current, with the store's. A config
// webhook keeps the id it had under the same name, so its queued jobs and
// history stay; one gone from the file is deleted with its jobs; a new one
// gets a new id. fromConfig must be valid (config.Load checks it).
//
// Processes that share a store may load at once: when another one changed
// the same webhooks meanwhile (a create conflicts, an update or delete finds
// nothing), Load reads the store again and starts over, a few times.
func (m *Manager) Load(ctx context.Context, fromConfig []*rule.Webhook) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := m.load(ctx, fromConfig)
		if err == nil {
			hash := configHash(fromConfig)
			m.configHash.Store(&hash)
			return nil
		}
		if attempt == 5 || !(errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)) {
			return err
		}
	}
}

// load is one try of Load, with mu held.
func (m *Manager) load(ctx context.Context, fromConfig []*rule.Webhook) error {
	kept, err := m.store.Webhooks(ctx)
	if err != nil {
		return fmt.Errorf("load webhooks: %w", err)
	}
	old := map[string]*rule.Webhook{} // config webhooks kept, by name
	var all []*rule.Webhook
	for _, w := range kept {
		if w.Source == rule.FromConfig {
			old[w.Name] = w
		} else {
			all = append(all, w)
		}
	}
	apiNames := map[string]bool{}
	for _, w := range all {
		apiNames[w.Name] = true
	}
	// Check everything before writing anything: a refused file changes nothing.
	for _, c := range fromConfig {
		if apiNames[c.Name] {
			return fmt.Errorf("webhook %q is in the config file and was also made through the API; delete one of them", c.Name)
		}
	}
	for _, c := range fromConfig {
		w := *c
		w.Source = rule.FromConfig
		if prev, ok := old[w.Name]; ok {
			delete(old, w.Name)
			w.ID = prev.ID
			if !reflect.DeepEqual(&w, prev) {
				if err := m.store.UpdateWebhook(ctx, &w); err != nil {
					return fmt.Errorf("update webhook %q: %w", w.Name, err)
				}
			}
		} else {
			w.ID = uuid.NewString()
			if err := m.store.CreateWebhook(ctx, &w); err != nil {
				return fmt.Errorf("create webhook %q: %w", w.Name, err)
			}
		}
		all = append(all, &w)
	}
	for _, gone := range old {
		if err := m.store.DeleteWebhook(ctx, gone.ID); err != nil {
			return fmt.Errorf("delete webhook %q (gone from the config file): %w", gone.Name, err)
		}
	}
	set, err := rule.NewSet(all)
	if err != nil {
		return err
	}
	m.cur.Store(set)
	return nil
}
