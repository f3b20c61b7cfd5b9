package sqlite

import (
	"context"
	"fmt"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// ackCall is one Ack: its lease, its history entry encoded, and its
// outcome.
type ackCall struct {
	ctx   context.Context
	l     store.Lease
	entry []byte
	lost  bool
}

// Ack deletes the delivered job and records e in its webhook's history. It
// returns once that is committed; a commit that waits for the disk makes it
// durable (see writeLazy): a power loss may undo the last acks, whose jobs
// are then delivered again. Acks made while others commit are one write
// together (see runAcks): they share the pages they change (the history's,
// the queue's), which are most of what a commit writes. While envelopes
// come, that write of the acks of jobs handed off waits for the next
// envelope's and commits with it (see canWait).
func (s *Store) Ack(ctx context.Context, l store.Lease, e history.Entry) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("ack job %q: %w", l.ID, err)
	}
	e.WebhookID = l.WebhookID
	b, err := s.entries.Encode(e)
	if err != nil {
		return fmt.Errorf("ack job %q: encode history entry: %w", l.ID, err)
	}
	// Once its write has run, nothing reads the entry (SQLite copied it):
	// the buffer goes back.
	defer s.entries.Release(b)
	c := &ackCall{ctx: ctx, l: l, entry: *b}
	if err := s.acks.Do(c); err != nil {
		return fmt.Errorf("ack job %q: %w", l.ID, err)
	}
	if c.lost {
		return fmt.Errorf("ack job %q: %w", l.ID, store.ErrLeaseLost)
	}
	return nil
}

// runAcks acks calls in one write, each on its own: a lease lost fails only
// its own call.
func (s *Store) runAcks(calls []*ackCall) []error {
	errs := make([]error, len(calls))
	var todo []*ackCall
	for i, c := range calls {
		if err := c.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		todo = append(todo, c)
	}
	if len(todo) == 0 {
		return errs
	}
	// Not one caller's context: a caller that gives up must not undo the
	// others' acks.
	ctx := context.Background()
	// Lazy: a power loss that undid acks would deliver their jobs again.
	// The acks of handed-off jobs alone may wait for an envelope's write.
	handed := true
	for _, c := range todo {
		h, ok := s.leases.get(c.l.ID, c.l.Token)
		handed = handed && ok && h.handed
	}
	err := s.writeLazy(ctx, handed, func(tx *txn) error {
		for _, c := range todo {
			if _, ok := s.leases.get(c.l.ID, c.l.Token); !ok {
				c.lost = true
				continue
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE id = ?`, c.l.ID)
			if err != nil {
				return fmt.Errorf("delete job %q: %w", c.l.ID, err)
			}
			n, err := affected(res)
			if err != nil {
				return fmt.Errorf("delete job %q: %w", c.l.ID, err)
			}
			if c.lost = n == 0; c.lost { // deleted with its webhook
				continue
			}
			if err := s.addHistory(ctx, tx, c.l.WebhookID, c.l.ID, c.entry); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	// Held until now: a Lease before the commit saw the job still queued.
	s.leases.mu.Lock()
	for _, c := range todo {
		s.leases.drop(c.l.ID, c.l.Token)
	}
	s.leases.mu.Unlock()
	return errs
}
