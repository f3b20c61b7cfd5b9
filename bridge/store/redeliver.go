package store

import (
	"context"
	"fmt"
	"time"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
)

// Redeliveries is what the API needs to act on a webhook's failed
// deliveries: purge its dead letters, or queue deliveries again.
//
// A redelivery keeps its delivery id, so that receivers can tell it from a
// new event, and starts afresh: Attempts 0, Created and Due now (so maxage
// runs from now), Redelivery true.
type Redeliveries interface {
	// PurgeDeadLetters removes every dead letter of a webhook and returns
	// how many there were.
	PurgeDeadLetters(ctx context.Context, webhookID string) (int, error)
	// Redeliver queues delivery deliveryID of a webhook again: from the
	// webhook's dead letters, removing it there, or else from the newest
	// history entry of that delivery (see FindDelivery and FromEntry). It
	// fails with ErrConflict while a job with that id is queued or leased,
	// and with ErrNotFound when neither the dead letters nor the history
	// have it.
	Redeliver(ctx context.Context, webhookID, deliveryID string, now time.Time) error
	// RedeliverDeadLetters queues every dead letter of a webhook again and
	// removes it from the dead letters, all at once. A dead letter whose
	// delivery id is queued or leased (the registry sent its event again)
	// is left where it is. It returns how many it queued.
	RedeliverDeadLetters(ctx context.Context, webhookID string, now time.Time) (int, error)
}

// Redelivery returns the job that delivers j again at now: the same delivery
// id, event and payload, its attempts and maxage started afresh.
func Redelivery(j Job, now time.Time) Job {
	j.Attempts = 0
	j.Created, j.Due = now, now
	j.Redelivery = true
	return j
}

// FindDelivery returns the newest entry of delivery id among entries, which
// are a webhook's history newest first. A ping's entries are never found: a
// ping is sent outside the queue and is not delivered again.
func FindDelivery(entries []history.Entry, id string) (history.Entry, bool) {
	for _, e := range entries {
		if e.ID == id && e.Action != string(event.Ping) {
			return e, true
		}
	}
	return history.Entry{}, false
}

// FromEntry returns the job that delivers again, at now, the attempt that e
// recorded: history keeps the request's body whole in Request.Content and its
// Content-Type in Request.Headers. A Content-Type that the webhook's custom
// headers set is masked there; the job then has none, and the custom header
// sets it again when the job is sent.
func FromEntry(e history.Entry, now time.Time) (Job, error) {
	if e.WebhookID == "" || e.ID == "" {
		return Job{}, fmt.Errorf("redeliver from history: the entry has no webhook id or delivery id")
	}
	ct := e.Request.Headers.Get("Content-Type")
	if ct == history.Masked {
		ct = ""
	}
	return Redelivery(Job{
		ID:          e.ID,
		WebhookID:   e.WebhookID,
		EventID:     e.EventID,
		Action:      e.Action,
		Payload:     e.Request.Content,
		ContentType: ct,
	}, now), nil
}
