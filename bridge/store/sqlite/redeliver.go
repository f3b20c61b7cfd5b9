package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

var _ store.Redeliveries = (*Store)(nil)

// PurgeDeadLetters removes every dead letter of a webhook.
func (s *Store) PurgeDeadLetters(ctx context.Context, webhookID string) (int, error) {
	var n int
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE webhook_id = ?`, webhookID)
		if err != nil {
			return err
		}
		n, err = affected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge dead letters of webhook %q: %w", webhookID, err)
	}
	return n, nil
}

// Redeliver queues delivery deliveryID of a webhook again, from its dead
// letters or else from its history.
func (s *Store) Redeliver(ctx context.Context, webhookID, deliveryID string, now time.Time) error {
	err := s.write(ctx, func(tx *txn) error {
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM queue WHERE id = ?`, deliveryID).Scan(&one); {
		case err == nil:
			return fmt.Errorf("it is queued or being delivered: %w", store.ErrConflict)
		case err != sql.ErrNoRows:
			return err
		}
		j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM dead_letters WHERE id = ? AND webhook_id = ?`,
			deliveryID, webhookID))
		switch {
		case err == nil:
			if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = ?`, deliveryID); err != nil {
				return fmt.Errorf("remove dead letter: %w", err)
			}
			return s.requeue(ctx, tx, store.Redelivery(j, now))
		case err != sql.ErrNoRows:
			return fmt.Errorf("read dead letter: %w", err)
		}
		j, err = s.fromHistory(ctx, tx, webhookID, deliveryID, now)
		if err != nil {
			return err
		}
		return s.requeue(ctx, tx, j)
	})
	if err != nil {
		return fmt.Errorf("redeliver delivery %q of webhook %q: %w", deliveryID, webhookID, err)
	}
	return nil
}

// fromHistory returns the job that redelivers the newest history entry of a
// delivery; store.ErrNotFound when the history has none.
func (s *Store) fromHistory(ctx context.Context, tx *txn, webhookID, deliveryID string, now time.Time) (store.Job, error) {
	// The newest entries only: the table may hold a few more (see trimEvery).
	rows, err := tx.QueryContext(ctx, `SELECT entry FROM history WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?`, webhookID, s.limits.History)
	if err != nil {
		return store.Job{}, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var entries []history.Entry
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return store.Job{}, fmt.Errorf("read history: %w", err)
		}
		var e history.Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return store.Job{}, fmt.Errorf("decode history entry: %w", err)
		}
		e.WebhookID = webhookID
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return store.Job{}, fmt.Errorf("read history: %w", err)
	}
	e, ok := store.FindDelivery(entries, deliveryID)
	if !ok {
		return store.Job{}, fmt.Errorf("no dead letter or history entry has it: %w", store.ErrNotFound)
	}
	return store.FromEntry(e, now)
}

// RedeliverDeadLetters queues every dead letter of a webhook again, but those
// whose delivery is queued or leased.
func (s *Store) RedeliverDeadLetters(ctx context.Context, webhookID string, now time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+jobCols+` FROM dead_letters
			WHERE webhook_id = ? AND id NOT IN (SELECT id FROM queue) ORDER BY seq`, webhookID)
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		var jobs []store.Job
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read dead letters: %w", err)
			}
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		for _, j := range jobs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = ?`, j.ID); err != nil {
				return fmt.Errorf("remove dead letter %q: %w", j.ID, err)
			}
			if err := s.requeue(ctx, tx, store.Redelivery(j, now)); err != nil {
				return err
			}
		}
		n = len(jobs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("redeliver dead letters of webhook %q: %w", webhookID, err)
	}
	return n, nil
}

// requeue adds j to the queue inside tx, as Ingest does.
func (s *Store) requeue(ctx context.Context, tx *txn, j store.Job) error {
	it := &ingestTx{s: s, tx: tx}
	if err := it.Enqueue(ctx, j); err != nil {
		return err
	}
	return it.finish(ctx)
}
