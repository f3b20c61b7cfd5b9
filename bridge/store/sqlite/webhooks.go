package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Webhooks returns every webhook kept, by name.
func (s *Store) Webhooks(ctx context.Context) ([]*rule.Webhook, error) {
	var out []*rule.Webhook
	err := s.read(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT id, spec FROM webhooks ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var spec []byte
			if err := rows.Scan(&id, &spec); err != nil {
				return err
			}
			w, err := store.DecodeWebhook(id, spec)
			if err != nil {
				return err
			}
			out = append(out, w)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	return out, nil
}

// CreateWebhook keeps a new webhook under w.ID; ErrConflict when its name or
// its id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w *rule.Webhook) error {
	err := s.putWebhook(ctx, w, func(tx *txn, spec []byte) error {
		if err := nameFree(ctx, tx, w); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, name, source, spec) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, w.ID, w.Name, string(w.Source), spec)
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("id %q is taken: %w", w.ID, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create webhook %q: %w", w.Name, err)
	}
	return nil
}

// UpdateWebhook replaces the webhook with w.ID; ErrNotFound when there is
// none, ErrConflict when w takes another's name.
func (s *Store) UpdateWebhook(ctx context.Context, w *rule.Webhook) error {
	err := s.putWebhook(ctx, w, func(tx *txn, spec []byte) error {
		if err := nameFree(ctx, tx, w); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET name = ?, source = ?, spec = ? WHERE id = ?`,
			w.Name, string(w.Source), spec, w.ID)
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("id %q: %w", w.ID, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update webhook %q: %w", w.Name, err)
	}
	return nil
}

// putWebhook encodes w and runs put with it in a transaction.
func (s *Store) putWebhook(ctx context.Context, w *rule.Webhook, put func(tx *txn, spec []byte) error) error {
	if w.ID == "" {
		return errors.New("webhook has no id")
	}
	spec, err := store.EncodeWebhook(w)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *txn) error { return put(tx, spec) })
}

// nameFree fails with ErrConflict when another webhook than w has w's name.
func nameFree(ctx context.Context, tx *txn, w *rule.Webhook) error {
	var other string
	err := tx.QueryRowContext(ctx, `SELECT id FROM webhooks WHERE name = ? AND id != ?`, w.Name, w.ID).Scan(&other)
	switch {
	case err == sql.ErrNoRows:
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("name %q is taken: %w", w.Name, store.ErrConflict)
}

// DeleteWebhook removes a webhook with its jobs (leased ones too: their
// acks fail with ErrLeaseLost), dead letters and history; ErrNotFound when
// there is no webhook with id.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		for _, q := range []string{
			`DELETE FROM queue WHERE webhook_id = ?`,
			`DELETE FROM dead_letters WHERE webhook_id = ?`,
			`DELETE FROM history WHERE webhook_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("delete jobs, dead letters and history: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete webhook %q: %w", id, err)
	}
	s.leases.dropWebhook(id)
	return nil
}
