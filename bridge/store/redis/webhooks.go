package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// announceTTL is how long a process that stopped announcing still counts in
// Announce's answer. Processes announce every few seconds.
const announceTTL = 30 * time.Second

// Webhooks returns every webhook kept, by name.
func (s *Store) Webhooks(ctx context.Context) ([]*rule.Webhook, error) {
	all, err := s.c.HGetAll(ctx, s.key("webhooks")).Result()
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", classify(err))
	}
	out := make([]*rule.Webhook, 0, len(all))
	for id, spec := range all {
		w, err := store.DecodeWebhook(id, []byte(spec))
		if err != nil {
			return nil, fmt.Errorf("read webhooks: %w", err)
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CreateWebhook keeps a new webhook under w.ID; ErrConflict when its name or
// its id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w *rule.Webhook) error {
	ans, err := s.putWebhook(ctx, createWebhookScript, w)
	if err != nil {
		return fmt.Errorf("create webhook %q: %w", w.Name, err)
	}
	switch ans {
	case "name":
		return fmt.Errorf("create webhook %q: name is taken: %w", w.Name, store.ErrConflict)
	case "id":
		return fmt.Errorf("create webhook %q: id %q is taken: %w", w.Name, w.ID, store.ErrConflict)
	}
	return nil
}

// UpdateWebhook replaces the webhook with w.ID; ErrNotFound when there is
// none, ErrConflict when w takes another's name.
func (s *Store) UpdateWebhook(ctx context.Context, w *rule.Webhook) error {
	ans, err := s.putWebhook(ctx, updateWebhookScript, w)
	if err != nil {
		return fmt.Errorf("update webhook %q: %w", w.Name, err)
	}
	switch ans {
	case "missing":
		return fmt.Errorf("update webhook %q: id %q: %w", w.Name, w.ID, store.ErrNotFound)
	case "name":
		return fmt.Errorf("update webhook %q: name is taken: %w", w.Name, store.ErrConflict)
	}
	return nil
}

// putWebhook runs a create or update script for w and returns its answer.
func (s *Store) putWebhook(ctx context.Context, script *script, w *rule.Webhook) (string, error) {
	if w.ID == "" {
		return "", errors.New("webhook has no id")
	}
	spec, err := store.EncodeWebhook(w)
	if err != nil {
		return "", err
	}
	ans, err := s.run(ctx, script, s.keys("webhooks", "names", "webhooks:version"), w.ID, w.Name, spec, newToken()).Text()
	if err != nil {
		return "", classify(err)
	}
	return ans, nil
}

// DeleteWebhook removes a webhook with its jobs (leased ones too: their
// acks fail with ErrLeaseLost), dead letters and history; ErrNotFound when
// there is no webhook with id.
//
// The webhook, its leased jobs, dead letters and history go in one script;
// its queued jobs, which may be a million, then go maintainBatch a script,
// so that Redis serves others in between. Once the webhook is gone its jobs
// are no one's: if the purge stops midway (an error, this process ends),
// Maintain, of any replica, goes on with it.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	n, err := s.run(ctx, deleteWebhookScript,
		s.keys("webhooks", "names", "webhooks:version", "queued", "leased", "created", "deadall", "leases", "deleting"),
		id, newToken()).Int()
	if err != nil {
		return fmt.Errorf("delete webhook %q: %w", id, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("delete webhook %q: %w", id, store.ErrNotFound)
	}
	// The webhook is deleted: an error now leaves its jobs to Maintain
	// (and its jobs in this process's inbox buffer to the next take).
	if s.in != nil {
		err = s.in.dropWebhook(ctx, id)
	}
	for left := 1; left > 0 && err == nil; {
		left, err = s.run(ctx, purgeJobsScript, s.keys("queued", "created", "deleting"), id, maintainBatch).Int()
	}
	return nil
}

// WebhooksVersion returns a random value that every create, update and
// delete of a webhook replaces, in the same script; "" before the first.
func (s *Store) WebhooksVersion(ctx context.Context) (string, error) {
	v, err := s.c.Get(ctx, s.key("webhooks:version")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read webhooks version: %w", classify(err))
	}
	return v, nil
}

// Announce records hash for this process at now, forgets processes not heard
// from for announceTTL, and returns the hashes of those left.
func (s *Store) Announce(ctx context.Context, hash string, now time.Time) (map[string]string, error) {
	v, err := s.run(ctx, announceScript, s.keys("replicas", "replicas:config"), s.process, hash,
		now.UnixMilli(), now.Add(-announceTTL).UnixMilli()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("announce config hash: %w", classify(err))
	}
	out := make(map[string]string, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		out[v[i]] = v[i+1]
	}
	return out, nil
}
