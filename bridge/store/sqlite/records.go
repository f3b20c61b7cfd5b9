package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Record adds e (a ping's attempt) to the history of e.WebhookID.
func (s *Store) Record(ctx context.Context, e history.Entry) error {
	if e.WebhookID == "" {
		return fmt.Errorf("record delivery %q: the entry has no webhook id", e.ID)
	}
	if err := s.write(ctx, func(tx *txn) error { return s.record(ctx, tx, e) }); err != nil {
		return fmt.Errorf("record delivery %q of webhook %q: %w", e.ID, e.WebhookID, err)
	}
	return nil
}

// record adds e to its webhook's history and drops the entries beyond
// Limits.History, oldest first.
func (s *Store) record(ctx context.Context, tx *txn, e history.Entry) error {
	b, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode history entry %q: %w", e.ID, err)
	}
	return s.addHistory(ctx, tx, e.WebhookID, e.ID, b)
}

// addHistory adds an encoded entry to a webhook's history, as record does.
func (s *Store) addHistory(ctx context.Context, tx *txn, webhookID, deliveryID string, entry []byte) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO history (webhook_id, entry) VALUES (?, ?)`, webhookID, entry); err != nil {
		return fmt.Errorf("add history entry %q: %w", deliveryID, err)
	}
	if !s.trims.due(webhookID) {
		return nil
	}
	return capRows(ctx, tx, "history", webhookID, s.limits.History)
}

// trimEvery is how many entries a webhook's history takes between two trims
// to its limit. Finding where to cut walks the limit newest entries, which
// costs more than adding one; so history is cut once every trimEvery
// entries, not after each. History and redeliveries read only the newest
// limit entries: the few older ones kept meanwhile are never seen.
const trimEvery = 16

// trims counts, per webhook, the entries added since its history was last
// trimmed, in this process. A count is a hint: one too high (a write rolled
// back) only trims sooner, and a new process trims after trimEvery entries.
type trims struct {
	mu    sync.Mutex
	added map[string]int
}

// due counts one entry of the webhook and reports whether to trim now.
func (t *trims) due(webhookID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.added == nil {
		t.added = map[string]int{}
	}
	t.added[webhookID]++
	if t.added[webhookID] < trimEvery {
		return false
	}
	delete(t.added, webhookID)
	return true
}

// capRows keeps the newest limit rows of a webhook in table (history or
// dead_letters, both ordered by seq).
func capRows(ctx context.Context, tx *txn, table, webhookID string, limit int) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE webhook_id = ?1 AND seq <=
		(SELECT seq FROM `+table+` WHERE webhook_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)`, webhookID, limit)
	if err != nil {
		return fmt.Errorf("trim %s of webhook %q to %d: %w", table, webhookID, limit, err)
	}
	return nil
}

// History returns a webhook's newest entries first, at most limit (all kept
// when limit is not positive).
func (s *Store) History(ctx context.Context, webhookID string, limit int) ([]history.Entry, error) {
	if limit <= 0 || limit > s.limits.History {
		limit = s.limits.History // the table may hold a few more (see trimEvery)
	}
	var out []history.Entry
	err := s.read(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT entry FROM history WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?`, webhookID, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			var e history.Entry
			if err := json.Unmarshal(b, &e); err != nil {
				return fmt.Errorf("decode entry: %w", err)
			}
			e.WebhookID = webhookID
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read history of webhook %q: %w", webhookID, err)
	}
	return out, nil
}

// DeadLetters returns a webhook's dead letters, the last to die first.
func (s *Store) DeadLetters(ctx context.Context, webhookID string) ([]store.DeadLetter, error) {
	var out []store.DeadLetter
	err := s.read(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT `+jobCols+`, error, died FROM dead_letters
			WHERE webhook_id = ? ORDER BY seq DESC`, webhookID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d store.DeadLetter
			var died int64
			d.Job, err = scanJob(rows, &d.Error, &died)
			if err != nil {
				return err
			}
			d.Died = fromNanos(died)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read dead letters of webhook %q: %w", webhookID, err)
	}
	return out, nil
}

// bury moves the queued or leased jobs matching where (a condition on
// queue's columns, with args) to their webhooks' dead letters with errText
// and died, replacing an older dead letter of the same delivery, and trims
// those dead letters to Limits.DeadLetters. It returns how many jobs it
// moved. Jobs moved together are added oldest made first.
func (s *Store) bury(ctx context.Context, tx *txn, where string, args []any, errText string, died time.Time) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT webhook_id FROM queue WHERE `+where, args...)
	if err != nil {
		return 0, fmt.Errorf("find jobs to dead-letter: %w", err)
	}
	var hooks []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find jobs to dead-letter: %w", err)
		}
		hooks = append(hooks, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find jobs to dead-letter: %w", err)
	}
	if len(hooks) == 0 {
		return 0, nil
	}
	// The SELECT list's two parameters come before the WHERE clause's.
	insertArgs := append([]any{errText, nanos(died)}, args...)
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO dead_letters (`+jobCols+`, error, died)
		SELECT `+queueCols+`, ?, ? FROM queue WHERE `+where+` ORDER BY created, id`, insertArgs...)
	if err != nil {
		return 0, fmt.Errorf("add dead letters: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE `+where, args...)
	if err != nil {
		return 0, fmt.Errorf("delete dead jobs: %w", err)
	}
	for _, id := range hooks {
		if err := capRows(ctx, tx, "dead_letters", id, s.limits.DeadLetters); err != nil {
			return 0, err
		}
	}
	return affected(res)
}
