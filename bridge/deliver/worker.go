package deliver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// storeTimeout bounds one store call of a worker or of the scheduler, and
// up to storeEvery more (see deadlines).
const (
	storeTimeout = 30 * time.Second
	storeEvery   = time.Second
)

// deadlines hands out the contexts of calls that must end within a time:
// each ends at least within after it was asked for, and up to every later,
// or with parent, and is cancelled by nothing else (jobs leased must reach
// a worker, and acks commit through a shutdown). The calls of an every
// share one: a context, its timer and its Done channel for each call
// (leases, acks: several an envelope; a request a delivery) were a tenth
// of regwebhook's allocations.
type deadlines struct {
	parent context.Context // context.Background() when nil
	within time.Duration
	every  time.Duration
	now    func() time.Time // time.Now when nil; tests set it

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc // never called: calls may hold ctx until it ends by itself
	renew  time.Time          // when ctx is no longer handed out
}

// longest is the most time a context of c may have left when handed out
// (with every 0, within: the caller's own bound).
func (c *deadlines) longest() time.Duration { return c.within + c.every }

// get returns a context for one call. With every 0 it is parent itself,
// with no deadline of c's: a context made for each call, and never
// cancelled, would live until its deadline, long after its call.
func (c *deadlines) get() context.Context {
	parent := c.parent
	if parent == nil {
		parent = context.Background()
	}
	if c.every <= 0 {
		return parent
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	t := now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil || !t.Before(c.renew) {
		c.ctx, c.cancel = context.WithDeadline(parent, t.Add(c.within+c.every))
		c.renew = t.Add(c.every)
	}
	return c.ctx
}

// resultKind is how a leased job ended, as the scheduler sees it.
type resultKind int

const (
	// delivered: the webhook answered 2xx.
	delivered resultKind = iota + 1
	// failed: the attempt failed (whether or not the job is dead).
	failed
	// released: the job went back to the queue untried (its webhook is gone
	// or disabled, or the process is stopping).
	released
)

// result is what a worker tells the scheduler when its job ends.
type result struct {
	webhookID string
	kind      resultKind
	pause     time.Time // failed with Retry-After: the webhook waits until then
	due       time.Time // failed and queued again: when the job is due
	at        time.Time // delivered or failed: when the attempt started
}

// deliver makes one attempt of a leased job and records it in the store. ctx
// is cancelled only when shutdown's grace has run out: a request it cuts is
// not an attempt, and the job is released.
//
// A delivered job (r.kind delivered) comes back with its history entry, for
// ack, which the worker runs once it has told the scheduler that the
// request ended: the worker's slot is free for the next request while the
// ack commits (the store commits the acks of many workers together). Run
// waits for the ack. A process that dies before the ack commits delivers
// the job again, as it would have if it had died while the webhook
// answered. (The entry comes back as a value, not in a function that acks:
// such a function, the lease and the entry it held took three allocations
// a delivery.)
func (d *Dispatcher) deliver(ctx context.Context, l store.Lease) (r result, entry history.Entry) {
	r = result{webhookID: l.WebhookID, kind: released}
	hook := d.hook(l.WebhookID)
	if hook == nil || hook.Status != rule.Enabled || ctx.Err() != nil {
		d.release(d.deliveryLog(l, ""), l)
		return r, history.Entry{}
	}
	hookName := hook.Name

	start := d.now()
	r.at = start
	entry, out := d.sender.Send(d.requests.get(), hook, l.Job)
	if ctx.Err() != nil && entry.Response == nil {
		d.release(d.deliveryLog(l, hookName), l)
		return r, history.Entry{}
	}
	now := d.now()
	d.metrics.deliveries.WithLabelValues(hook.Name, out.Reason).Inc()
	d.metrics.latency.Observe(now.Sub(start).Seconds())

	if out.Kind == Success {
		r.kind = delivered
		return r, entry
	}

	r.kind = failed
	f := store.Failure{
		Now:         now,
		MaxAttempts: d.retry.MaxAttempts,
		MaxAge:      d.retry.MaxAge,
		Error:       entry.Error,
		Entry:       entry,
	}
	switch out.Kind {
	case Pause:
		f.Due = minTime(out.Until, now.Add(d.retry.Max))
		r.pause = f.Due
	case GiveUp:
		f.Due = now
		f.MaxAttempts = max(1, l.Attempts)
	default:
		f.Due = now.Add(d.backoff.Delay(l.Attempts))
	}
	flog := d.deliveryLog(l, hookName).WithField("reason", out.Reason)
	dead, err := d.queue.Fail(d.storeCtx.get(), l, f)
	switch {
	case err != nil:
		d.storeError(flog, "fail", err)
	case dead:
		d.metrics.dead.WithLabelValues(deadFailed).Inc()
		flog.WithField("error", entry.Error).Warn("delivery moved to dead letters")
	default:
		r.due = f.Due
		flog.WithField("due", f.Due).Debug("delivery failed; will retry")
	}
	return r, history.Entry{}
}

// ack acknowledges a delivered job with its history entry.
func (d *Dispatcher) ack(l store.Lease, entry history.Entry) {
	err := d.queue.Ack(d.storeCtx.get(), l, entry)
	if err == nil && !debugOn(d.log) {
		return
	}
	var hookName string
	if hook := d.hook(l.WebhookID); hook != nil {
		hookName = hook.Name
	}
	if err != nil {
		d.storeError(d.deliveryLog(l, hookName), "ack", err)
		return
	}
	d.deliveryLog(l, hookName).Debug("delivered")
}

// hook is the webhook of id in the current set, nil when there is none
// (deleted, or no set yet).
func (d *Dispatcher) hook(id string) *rule.Webhook {
	set := d.hooks()
	if set == nil {
		return nil
	}
	h, _ := set.ByID(id)
	return h
}

// deliveryLog is the logger of a line about a delivery: it names the
// delivery (its id, the registry's event id) and its webhook (id, and name
// once known); never a header value. Called only for a line to write: most
// deliveries write none.
func (d *Dispatcher) deliveryLog(l store.Lease, hookName string) logrus.FieldLogger {
	f := logrus.Fields{"delivery": l.ID, "event": l.EventID, "webhookId": l.WebhookID, "attempt": l.Attempts}
	if hookName != "" {
		f["webhook"] = hookName
	}
	return d.log.WithFields(f)
}

// debugOn reports whether log writes debug lines, so that the hot path
// builds none that would be thrown away.
func debugOn(log logrus.FieldLogger) bool {
	switch l := log.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(logrus.DebugLevel)
	case *logrus.Entry:
		return l.Logger.IsLevelEnabled(logrus.DebugLevel)
	}
	return true
}

// minTime is the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (d *Dispatcher) release(log logrus.FieldLogger, l store.Lease) {
	if err := d.queue.Release(d.storeCtx.get(), l); err != nil {
		d.storeError(log, "release", err)
	}
}

// storeError logs a failed store call of a worker. A lost lease means another
// worker owns the job now: nothing to do. Otherwise the job stays leased
// until its lease runs out, and is then delivered again.
func (d *Dispatcher) storeError(log logrus.FieldLogger, op string, err error) {
	if errors.Is(err, store.ErrLeaseLost) {
		log.WithError(err).Debugf("%s: lease lost; the job is someone else's now", op)
		return
	}
	d.metrics.storeError(op)
	log.WithError(err).Warnf("%s: store call failed; the job returns when its lease runs out", op)
}
