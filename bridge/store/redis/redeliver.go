package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
)

var _ store.Redeliveries = (*Store)(nil)

// maxRedeliverAttempts bounds how often a redelivery is tried again when the
// dead letters it read changed before its script ran.
const maxRedeliverAttempts = 5

// purgeScript removes every dead letter of a webhook.
//
// KEYS: [1] deadall.
// ARGV: [1] prefix, [2] webhook id.
// Returns: how many there were.
var purgeScript = newScript("purge", `
k.deadall = KEYS[1]
local ids = redis.call('ZRANGE', P .. 'dead:' .. ARGV[2], 0, -1)
for _, id in ipairs(ids) do undead(id, ARGV[2]) end
return #ids
`)

// redeliverScript queues one delivery again, made by Go from the webhook's
// dead letter or from its history (store.Redelivery, store.FromEntry): it
// checks that no job has the id, and that the dead letter Go read is still
// the one there (none, or the one that died at the time given).
//
// KEYS: [1] queued, [2] created, [3] deadall.
// ARGV: [1] prefix, [2] webhook id, [3] delivery id, [4] died (ns) of the
// dead letter read, or empty for none, [5] '1' when a job follows, then the
// job's jobArgs values.
// Returns: 'ok', 'conflict' (a job has the id), 'missing' (no job follows),
// 'changed' (the dead letter is not the one read); nothing changed unless ok.
var redeliverScript = newScript("redeliver", `
k.queued, k.created, k.deadall = KEYS[1], KEYS[2], KEYS[3]
local webhook, id = ARGV[2], ARGV[3]
if jobexists(id) then return 'conflict' end
local dl = redis.call('HMGET', P .. 'dl:' .. id, 'webhook', 'died')
local died = ''
if dl[1] == webhook then died = dl[2] end
if died ~= ARGV[4] then return 'changed' end
if ARGV[5] ~= '1' then return 'missing' end
if died ~= '' then undead(id, webhook) end
addjob(id, unpack(ARGV, 6, 9))
return 'ok'
`)

// redeliverDeadScript queues again every dead letter of a webhook but those
// whose delivery is queued or leased, as jobs made by Go
// (store.Redelivery), if the dead letters are still those Go read.
//
// KEYS: [1] queued, [2] created, [3] deadall.
// ARGV: [1] prefix, [2] webhook id, [3] number of dead letters read N, then
// per dead letter its died (ns), its id and the job's jobArgs values.
// Returns: the number queued, or -1 when the dead letters changed (nothing
// changed then).
var redeliverDeadScript = newScript("redeliverDead", `
k.queued, k.created, k.deadall = KEYS[1], KEYS[2], KEYS[3]
local webhook, n = ARGV[2], tonumber(ARGV[3])
if redis.call('ZCARD', P .. 'dead:' .. webhook) ~= n then return -1 end
for i = 4, #ARGV, 6 do
  if redis.call('HGET', P .. 'dl:' .. ARGV[i + 1], 'died') ~= ARGV[i] then return -1 end
end
local queued = 0
for i = 4, #ARGV, 6 do
  local id = ARGV[i + 1]
  if not jobexists(id) then
    undead(id, webhook)
    addjob(id, unpack(ARGV, i + 2, i + 5))
    queued = queued + 1
  end
end
return queued
`)

// PurgeDeadLetters removes every dead letter of a webhook.
func (s *Store) PurgeDeadLetters(ctx context.Context, webhookID string) (int, error) {
	n, err := s.run(ctx, purgeScript, s.keys("deadall"), webhookID).Int()
	if err != nil {
		return 0, fmt.Errorf("purge dead letters of webhook %q: %w", webhookID, classify(err))
	}
	return n, nil
}

// Redeliver queues delivery deliveryID of a webhook again, from its dead
// letters or else from its history.
func (s *Store) Redeliver(ctx context.Context, webhookID, deliveryID string, now time.Time) error {
	if s.in != nil {
		defer s.in.queued(webhookID) // its queue may hold the job now
	}
	for attempt := 1; ; attempt++ {
		err := s.redeliver(ctx, webhookID, deliveryID, now)
		if !errors.Is(err, errDeadLettersChanged) || attempt == maxRedeliverAttempts {
			if err != nil {
				return fmt.Errorf("redeliver delivery %q of webhook %q: %w", deliveryID, webhookID, err)
			}
			return nil
		}
	}
}

// errDeadLettersChanged: the dead letters changed between reading them and
// the script; read them again.
var errDeadLettersChanged = fmt.Errorf("%w: dead letters changed meanwhile", store.ErrUnavailable)

func (s *Store) redeliver(ctx context.Context, webhookID, deliveryID string, now time.Time) error {
	args := []any{webhookID, deliveryID}
	dead, err := s.DeadLetters(ctx, webhookID)
	if err != nil {
		return err
	}
	var job *store.Job
	died := ""
	for _, d := range dead {
		if d.ID == deliveryID {
			j := store.Redelivery(d.Job, now)
			job, died = &j, nanos(d.Died)
		}
	}
	if job == nil {
		entries, err := s.History(ctx, webhookID, 0)
		if err != nil {
			return err
		}
		if e, ok := store.FindDelivery(entries, deliveryID); ok {
			j, err := store.FromEntry(e, now)
			if err != nil {
				return err
			}
			job = &j
		}
	}
	args = append(args, died)
	if job == nil {
		args = append(args, "0")
	} else {
		args = append(append(args, "1"), jobArgs(*job)...)
	}
	ans, err := s.run(ctx, redeliverScript, s.keys("queued", "created", "deadall"), args...).Text()
	if err != nil {
		return classify(err)
	}
	switch ans {
	case "conflict":
		return fmt.Errorf("it is queued or being delivered: %w", store.ErrConflict)
	case "missing":
		return fmt.Errorf("no dead letter or history entry has it: %w", store.ErrNotFound)
	case "changed":
		return errDeadLettersChanged
	}
	return nil
}

// RedeliverDeadLetters queues every dead letter of a webhook again, but those
// whose delivery is queued or leased.
func (s *Store) RedeliverDeadLetters(ctx context.Context, webhookID string, now time.Time) (int, error) {
	if s.in != nil {
		defer s.in.queued(webhookID) // its queue may hold the job now
	}
	for attempt := 1; ; attempt++ {
		dead, err := s.DeadLetters(ctx, webhookID)
		if err != nil {
			return 0, fmt.Errorf("redeliver dead letters of webhook %q: %w", webhookID, err)
		}
		args := []any{webhookID, len(dead)}
		for _, d := range dead {
			args = append(append(args, nanos(d.Died), d.ID), jobArgs(store.Redelivery(d.Job, now))...)
		}
		n, err := s.run(ctx, redeliverDeadScript, s.keys("queued", "created", "deadall"), args...).Int()
		if err != nil {
			return 0, fmt.Errorf("redeliver dead letters of webhook %q: %w", webhookID, classify(err))
		}
		if n >= 0 {
			return n, nil
		}
		if attempt == maxRedeliverAttempts {
			return 0, fmt.Errorf("redeliver dead letters of webhook %q: %w", webhookID, errDeadLettersChanged)
		}
	}
}

// jobArgs are what scripts take of a job to make it (addjob in scripts.go):
// its webhook, due and created, for the indexes, then its string.
func jobArgs(j store.Job) []any {
	return []any{j.WebhookID, nanos(j.Due), nanos(j.Created), encodeJob(j)}
}
