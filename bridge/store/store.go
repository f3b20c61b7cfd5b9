// Package store defines what regwebhook keeps durably — the job queue, dead
// letters, history, webhooks made through the API, dedupe keys and the tag
// index — as the contract each store implements: sqlite (embedded) and
// redis. Package storetest checks an implementation against it.
//
// Every method that changes state is atomic: it happens whole or not at all,
// and once it returns nil the change survives a crash of the process (and,
// for the embedded store with sync full, of the machine).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// Errors the callers decide on, checked with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: a webhook name that is taken, or a delivery still queued.
	ErrConflict = errors.New("conflict")
	// ErrLeaseLost: the job was reclaimed, released, finished or deleted since
	// it was leased; whoever holds the old lease must not change it.
	ErrLeaseLost = errors.New("lease lost")
	// ErrUnavailable: the store cannot be reached; try again later.
	ErrUnavailable = errors.New("store unavailable")
)

// Job is one delivery: an event's payload for one webhook. Its ID, the
// delivery id, stays the same across attempts and redeliveries.
type Job struct {
	ID          string
	WebhookID   string
	EventID     string
	Action      string
	Payload     string // rendered once, at enqueue
	ContentType string
	Created     time.Time // made or redelivered; maxage runs from here
	Redelivery  bool
	Attempts    int       // attempts started, this one included once leased
	Due         time.Time // not leased before this
}

// Lease is a job taken by a worker until Until. Token fences the lease: once
// the job is reclaimed, Ack, Fail and Release with the old token fail with
// ErrLeaseLost.
type Lease struct {
	Job
	Token string
	Until time.Time
}

// DeadLetter is a job that ran out of attempts or of age.
type DeadLetter struct {
	Job
	Error string
	Died  time.Time
}

// Limits bound what a store keeps.
type Limits struct {
	History     int // attempts kept per webhook, newest first
	DeadLetters int // dead letters kept per webhook; the oldest are dropped
}

// Tx is what an Ingest transaction can do: read and change the tag index,
// check and record event ids, and enqueue jobs.
type Tx interface {
	event.Index
	// Seen reports whether an event id was recorded and not yet forgotten.
	Seen(ctx context.Context, eventID string) (bool, error)
	// MarkSeen records an event id; Maintain forgets it once until has passed
	// (a store may forget it by itself then, as Redis does with a TTL).
	MarkSeen(ctx context.Context, eventID string, until time.Time) error
	// Enqueue adds a job. A job whose ID is already queued is not added again.
	Enqueue(ctx context.Context, job Job) error
}

// HandoffTx is a Tx that can also lease a job it enqueues to the caller, in
// the same commit: the process that received an event delivers it from
// memory, without a Lease call, while the job is as durable as any other
// (a process that dies holds it until its lease runs out, as it does the
// jobs its workers hold). Both stores implement it: it saves Redis a lease
// script and its round trip, the embedded store a read of the queue, and
// either the dispatcher's wake-up between commit and delivery.
type HandoffTx interface {
	Tx
	// EnqueueLeased adds job as Enqueue does, leased to the caller until
	// until: Lease does not return it, and the lease's token acks, fails or
	// releases it, as for a job Lease returned.
	EnqueueLeased(ctx context.Context, job Job, until time.Time) error
	// Handed returns, once Ingest has returned nil, the leases of the jobs
	// EnqueueLeased added (its attempts counting this one); a job whose ID
	// was already queued is neither added nor leased, and is not in it.
	Handed() []Lease
}

// Ingester commits what one envelope changes, all or nothing.
type Ingester interface {
	// Ingest runs fn in a transaction and commits what it did if it returns
	// nil. fn may run more than once (a store with optimistic transactions
	// retries it on a conflict), so it must change nothing but tx.
	Ingest(ctx context.Context, fn func(Tx) error) error
}

// LeaseRequest asks for due jobs of some webhooks.
type LeaseRequest struct {
	Now time.Time
	For time.Duration // lease length
	// Want maps a webhook id to the most jobs to lease for it.
	Want map[string]int
}

// LeaseResult holds the jobs leased, and for each webhook asked about, when
// its earliest job still queued is due (absent: none queued).
type LeaseResult struct {
	Leases []Lease
	Next   map[string]time.Time
}

// Failure says how an attempt failed and what to do next.
type Failure struct {
	Now         time.Time
	Due         time.Time // when to try again, if tries are left
	MaxAttempts int       // dead once this many attempts failed
	MaxAge      time.Duration
	Error       string
	Entry       history.Entry
}

// Maintenance counts what Maintain did.
type Maintenance struct {
	Reclaimed int // expired leases put back in the queue
	Expired   int // queued jobs dead-lettered for age
	Forgotten int // expired event ids removed
}

// Depth counts jobs by state.
type Depth struct {
	Ready, Delayed, Leased, Dead int
}

// Queue is what delivery workers need.
type Queue interface {
	// Lease takes due jobs, oldest due first, and increments their attempts.
	Lease(ctx context.Context, req LeaseRequest) (LeaseResult, error)
	// Ack finishes a delivered job and records its attempt in history.
	Ack(ctx context.Context, l Lease, e history.Entry) error
	// Fail records a failed attempt and queues the job again at f.Due, or moves
	// it to dead letters when it has had f.MaxAttempts attempts or is older than
	// f.MaxAge. It reports whether the job is dead.
	Fail(ctx context.Context, l Lease, f Failure) (dead bool, err error)
	// Release puts a leased job back, due now, without counting its attempt:
	// for a worker that stops before it tried.
	Release(ctx context.Context, l Lease) error
	// Maintain puts jobs with expired leases back in the queue, dead-letters
	// queued jobs older than maxAge, and forgets expired event ids.
	Maintain(ctx context.Context, now time.Time, maxAge time.Duration) (Maintenance, error)
}

// Records is what reading and writing history needs.
type Records interface {
	// Record adds an entry to a webhook's history (a ping's).
	Record(ctx context.Context, e history.Entry) error
	// History returns a webhook's newest entries first, at most limit.
	History(ctx context.Context, webhookID string, limit int) ([]history.Entry, error)
	// DeadLetters returns a webhook's dead letters, newest first.
	DeadLetters(ctx context.Context, webhookID string) ([]DeadLetter, error)
}

// Webhooks keeps webhooks: those made through the API, and the ids given to
// those of the config file.
type Webhooks interface {
	// Webhooks returns every webhook kept, with its ID and Source.
	Webhooks(ctx context.Context) ([]*rule.Webhook, error)
	// CreateWebhook keeps a new webhook; ErrConflict when its name is taken.
	CreateWebhook(ctx context.Context, w *rule.Webhook) error
	// UpdateWebhook replaces the webhook with w.ID; ErrNotFound when there is
	// none, ErrConflict when it takes another's name.
	UpdateWebhook(ctx context.Context, w *rule.Webhook) error
	// DeleteWebhook removes a webhook with its jobs, dead letters and history.
	DeleteWebhook(ctx context.Context, id string) error
}

// Store is everything a store keeps.
type Store interface {
	Ingester
	Queue
	Records
	Redeliveries
	Webhooks
	// Depth counts jobs by state at now.
	Depth(ctx context.Context, now time.Time) (Depth, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store. It is safe to call twice.
	Close() error
}

// Shared is implemented by a store that several regwebhook processes use at
// once (redis): what one of them changes, the others must learn.
type Shared interface {
	// WebhooksVersion returns a value that changes whenever any process
	// creates, updates or deletes a webhook. Its value means nothing else.
	WebhooksVersion(ctx context.Context) (string, error)
	// Announce records hash as this process's digest of its config-file
	// webhooks at now, and returns the digest of every process that announced
	// one lately (this one included), by process.
	Announce(ctx context.Context, hash string, now time.Time) (map[string]string, error)
}
