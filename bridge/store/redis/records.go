package redis

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Record adds e (a ping's attempt) to the history of e.WebhookID, keeping
// the newest Limits.History.
func (s *Store) Record(ctx context.Context, e history.Entry) error {
	if e.WebhookID == "" {
		return fmt.Errorf("record delivery %q: the entry has no webhook id", e.ID)
	}
	b, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("record delivery %q: encode: %w", e.ID, err)
	}
	if err := s.run(ctx, recordScript, nil, e.WebhookID, b, s.limits.History).Err(); err != nil {
		return fmt.Errorf("record delivery %q of webhook %q: %w", e.ID, e.WebhookID, classify(err))
	}
	return nil
}

// History returns a webhook's newest entries first, at most limit (all kept,
// Limits.History, when limit is not positive).
func (s *Store) History(ctx context.Context, webhookID string, limit int) ([]history.Entry, error) {
	if limit <= 0 || limit > s.limits.History {
		limit = s.limits.History // the list may hold up to 16 more (record in scripts.go, runAcks)
	}
	stop := int64(limit) - 1
	raw, err := s.c.LRange(ctx, s.key("history:"+webhookID), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("read history of webhook %q: %w", webhookID, classify(err))
	}
	out := make([]history.Entry, 0, len(raw))
	for _, b := range raw {
		var e history.Entry
		if err := json.Unmarshal([]byte(b), &e); err != nil {
			return nil, fmt.Errorf("read history of webhook %q: decode entry: %w", webhookID, err)
		}
		e.WebhookID = webhookID
		out = append(out, e)
	}
	return out, nil
}

// DeadLetters returns a webhook's dead letters, the last to die first.
func (s *Store) DeadLetters(ctx context.Context, webhookID string) ([]store.DeadLetter, error) {
	v, err := s.run(ctx, deadLettersScript, nil, webhookID).Slice()
	if err != nil {
		return nil, fmt.Errorf("read dead letters of webhook %q: %w", webhookID, classify(err))
	}
	out := make([]store.DeadLetter, 0, len(v))
	for _, raw := range v {
		f, ok := raw.([]any)
		if !ok || len(f) != 12 {
			return nil, fmt.Errorf("read dead letters of webhook %q: bad answer %v", webhookID, raw)
		}
		id := str(f[0])
		var jf jobFields
		for i, v := range f[3:] {
			jf[i] = str(v)
		}
		j, err := jobOf(id, &jf)
		if err != nil {
			return nil, fmt.Errorf("read dead letters of webhook %q: %w", webhookID, err)
		}
		died, err := fromNanos(str(f[2]))
		if err != nil {
			return nil, fmt.Errorf("read dead letters of webhook %q: dead letter %q died: %w", webhookID, id, err)
		}
		out = append(out, store.DeadLetter{Job: j, Error: str(f[1]), Died: died})
	}
	return out, nil
}
