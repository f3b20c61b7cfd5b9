package redis

import "context"

// DeleteWebhookOnly runs DeleteWebhook's first script alone: the webhook is
// gone, its queued jobs not yet removed, as when its process ends midway.
func (s *Store) DeleteWebhookOnly(ctx context.Context, id string) error {
	return s.run(ctx, deleteWebhookScript,
		s.keys("webhooks", "names", "webhooks:version", "queued", "leased", "created", "deadall", "leases", "deleting"),
		id, newToken()).Err()
}

// InboxCap is how many jobs a process's inbox buffer holds.
const InboxCap = inboxCap
