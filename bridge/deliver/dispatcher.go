package deliver

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Queue is what the Dispatcher needs of the store: the methods of
// store.Queue.
type Queue interface {
	Lease(ctx context.Context, req store.LeaseRequest) (store.LeaseResult, error)
	Ack(ctx context.Context, l store.Lease, e history.Entry) error
	Fail(ctx context.Context, l store.Lease, f store.Failure) (dead bool, err error)
	Release(ctx context.Context, l store.Lease) error
	Maintain(ctx context.Context, now time.Time, maxAge time.Duration) (store.Maintenance, error)
}

var _ Queue = store.Queue(nil)

// RetryPolicy says how failed attempts are retried (delivery.retry).
type RetryPolicy struct {
	Initial     time.Duration // first backoff ceiling
	Max         time.Duration // backoff ceiling, and the longest Retry-After pause
	MaxAttempts int           // a job is dead once this many attempts failed
	MaxAge      time.Duration // a job older than this is dead
}

// Params configures a Dispatcher. Zero values take the defaults of
// `delivery:` in the config, or those named.
type Params struct {
	Queue Queue
	// Hooks returns the current webhooks; the set changes on reload and on
	// changes through the API. It is called for every job and on every turn
	// of the scheduler, so it must be cheap, and return the same *Set until
	// the webhooks change (a new Set makes every webhook be asked for jobs).
	// A job whose webhook is not in the set, or is disabled, is left in the
	// queue.
	Hooks  func() *rule.Set
	Sender *Sender
	// Workers bounds the requests in flight in total; default 32.
	Workers int
	// PerWebhook bounds the requests in flight to one webhook; default 8.
	PerWebhook int
	// Lease is how long a job is leased; it must exceed the Sender's
	// time-out. Default one minute.
	Lease time.Duration
	// Retry: default 1s, 1h, 15 attempts, 24h.
	Retry RetryPolicy
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand returns a number in [0, 1) for backoff jitter; it is called under
	// a lock. Default math/rand/v2.Float64.
	Rand func() float64
	// Log; default discards.
	Log logrus.FieldLogger
	// Registerer takes the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// StoreErrors counts failed store calls by op (label "op": lease, ack,
	// fail, release, maintain). The caller registers it, and may share it
	// with other components; nil: not counted.
	StoreErrors *prometheus.CounterVec
	// MaintainEvery is how often expired leases are reclaimed and old jobs
	// dead-lettered; default 1s.
	MaintainEvery time.Duration
	// PollEvery is how often every webhook is asked for due jobs, to find
	// those enqueued by other processes; default 1s.
	PollEvery time.Duration
	// ShutdownGrace is how long Run waits, once its context is done, for the
	// requests in flight to end before it cancels them; 0 cancels at once.
	ShutdownGrace time.Duration
	// MaxQueueDelay is how long a due job in the queue may wait while jobs
	// handed off to this process for its webhook go first (see handoff.go);
	// default 10s.
	MaxQueueDelay time.Duration
}

// Dispatcher leases due jobs and delivers them with a bounded number of
// workers shared fairly across webhooks (see the fairness rules in
// fairness.go). Create it with New, run it with Run.
type Dispatcher struct {
	queue         Queue
	hooks         func() *rule.Set
	sender        *Sender
	lease         time.Duration
	retry         RetryPolicy
	now           func() time.Time
	backoff       Backoff
	log           logrus.FieldLogger
	metrics       *metrics
	maintainEvery time.Duration
	pollEvery     time.Duration
	grace         time.Duration
	maxQueueDelay time.Duration

	wakeMu  sync.Mutex
	woken   map[string]bool
	wakeAll bool
	wakeCh  chan struct{}

	ho handoffs
	// waiting: jobs handed off that wait for a request slot of their
	// webhook (see handoff.go), by webhook, oldest first; nwaiting counts
	// them. Owned by the Run goroutine.
	waiting    map[string][]store.Lease
	nwaiting   int
	maxWaiting int
	// sweepAt is when the first waiting job's lease gets too short to start
	// a request (zero: none waits); sweepAll, that a webhook's set or health
	// changed. sweepWaiting walks the waiting jobs only then.
	sweepAt  time.Time
	sweepAll bool

	done chan result    // workers report here; buffered to Workers
	wg   sync.WaitGroup // jobs started and not yet ended, acks included
	// Worker goroutines serve job after job: one goroutine per job would
	// grow a new stack for each request (the HTTP client's and the ack's
	// calls go deep), some 4 % of the process's CPU under load. idle hands a
	// job to a goroutine that waits for one; there are at most maxIdle of
	// those, and they end when Run does (quit). maxIdle is the most that
	// can be busy at once: the workers, and the acks waiting to commit.
	// With the workers' number alone, the goroutines that a batch of acks
	// let go of together ended, and the next requests started new ones
	// (2.2 goroutines started an envelope with 16 connections on Redis,
	// against 1.0 now).
	idle    chan func()
	idleN   atomic.Int32
	maxIdle int32
	quit    chan struct{}
	// acking holds a slot per ack not yet committed, ackSlots per worker
	// up to maxAcking: when the store commits acks slower than workers
	// deliver, workers wait for a slot before taking the next job, so that
	// acks pending (and the deliveries a crash would repeat) stay bounded.
	acking chan struct{}
	// storeCtx: the contexts of the workers' and the scheduler's store
	// calls; requests: of the workers' requests, made in Run.
	storeCtx deadlines
	requests *deadlines

	// Owned by the Run goroutine.
	sched        *scheduler
	storeDelay   time.Duration
	storeRetryAt time.Time
	// series: the names of the webhooks, by id, that have failing gauges;
	// seriesSet: the set they were last checked against.
	series    map[string]string
	seriesSet *rule.Set

	lifeMu  sync.Mutex
	started bool
	closed  bool
	stop    context.CancelFunc
	stopped chan struct{}
}

// ackSlots is how many acks may wait to commit per worker, up to
// maxAcking in all. Enough for the acks of many deliveries to commit
// together (one commit per ack would cap deliveries at the store's commits
// per second), few enough that they cost no memory to speak of.
const ackSlots = 32

// maxAcking bounds the acks waiting to commit whatever the workers: each
// holds a goroutine, its job and its history entry, and more of them buy
// no larger commits. (At ackSlots per worker, 128 workers draining a
// backlog on the embedded store held 4,096 acks and peaked at 223 MB.) It is
// ackSlots times the default 32 workers.
const maxAcking = 1024

// New returns a Dispatcher; it does nothing until Run.
func New(p Params) *Dispatcher {
	if p.Workers <= 0 {
		p.Workers = 32
	}
	if p.PerWebhook <= 0 {
		p.PerWebhook = 8
	}
	if p.Lease <= 0 {
		p.Lease = time.Minute
	}
	if p.Retry.Initial <= 0 {
		p.Retry.Initial = time.Second
	}
	if p.Retry.Max <= 0 {
		p.Retry.Max = time.Hour
	}
	if p.Retry.MaxAttempts <= 0 {
		p.Retry.MaxAttempts = 15
	}
	if p.Retry.MaxAge <= 0 {
		p.Retry.MaxAge = 24 * time.Hour
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	if p.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		p.Log = l
	}
	if p.MaintainEvery <= 0 {
		p.MaintainEvery = time.Second
	}
	if p.PollEvery <= 0 {
		p.PollEvery = time.Second
	}
	if p.MaxQueueDelay <= 0 {
		p.MaxQueueDelay = 10 * time.Second
	}
	var randMu sync.Mutex
	rnd := p.Rand
	acking := make(chan struct{}, min(ackSlots*p.Workers, maxAcking))
	return &Dispatcher{
		queue:  p.Queue,
		hooks:  p.Hooks,
		sender: p.Sender,
		lease:  p.Lease,
		retry:  p.Retry,
		now:    p.Now,
		backoff: Backoff{Initial: p.Retry.Initial, Max: p.Retry.Max, Rand: func() float64 {
			randMu.Lock()
			defer randMu.Unlock()
			return rnd()
		}},
		log:           p.Log,
		metrics:       newMetrics(p.Registerer, p.Log, p.StoreErrors, p.Workers),
		maintainEvery: p.MaintainEvery,
		pollEvery:     p.PollEvery,
		grace:         p.ShutdownGrace,
		maxQueueDelay: p.MaxQueueDelay,
		woken:         map[string]bool{},
		waiting:       map[string][]store.Lease{},
		maxWaiting:    waitingPerWorker * p.Workers,
		wakeCh:        make(chan struct{}, 1),
		ho:            handoffs{budget: map[string]*int{}, reserved: map[string]int{}},
		done:          make(chan result, p.Workers),
		idle:          make(chan func()),
		maxIdle:       int32(p.Workers + cap(acking)),
		quit:          make(chan struct{}),
		acking:        acking,
		storeCtx:      deadlines{within: storeTimeout, every: storeEvery},
		sched:         newScheduler(p.Workers, p.PerWebhook),
		series:        map[string]string{},
		stopped:       make(chan struct{}),
	}
}

// Wake tells the Dispatcher that jobs of these webhooks, due already, were
// committed, so it leases them now rather than at its next poll, in order
// with the jobs handed off to it before them; no ids wakes every webhook.
// It never blocks.
func (d *Dispatcher) Wake(webhookIDs ...string) {
	d.wakeMu.Lock()
	if len(webhookIDs) == 0 {
		d.wakeAll = true
	}
	for _, id := range webhookIDs {
		d.woken[id] = true
	}
	d.wakeMu.Unlock()
	d.wakeLoop()
}

// Run delivers jobs until ctx is done or Close is called. Then it stops
// leasing, waits up to ShutdownGrace for the requests in flight, cancels
// those still running and releases their jobs (their attempts not counted),
// and returns once every worker goroutine has ended. Store errors are logged
// and retried, never returned. Run may be called once.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.queue == nil || d.hooks == nil || d.sender == nil {
		return errors.New("deliver: Params.Queue, Hooks and Sender are required")
	}
	d.lifeMu.Lock()
	if d.started || d.closed {
		d.lifeMu.Unlock()
		return errors.New("deliver: Run called twice, or after Close")
	}
	d.started = true
	ctx, d.stop = context.WithCancel(ctx)
	d.lifeMu.Unlock()
	defer close(d.stopped)
	defer d.stop()

	// Requests get their own context so that they outlive ctx by the grace.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	// A request may run past the timeout by a little, never so far that it
	// could outlast its lease (delivery.lease is longer than the timeout):
	// by a quarter of the time the lease has over it at most.
	d.requests = d.sender.requestContexts(work, (d.lease-d.sender.timeout)/4)
	d.loop(ctx, work)
	d.stopHandoffs()
	d.drain(cancelWork)
	close(d.quit)
	return nil
}

// Close stops Run, if it runs, and waits for it to return. It is safe to
// call twice.
func (d *Dispatcher) Close() error {
	d.lifeMu.Lock()
	d.closed = true
	started, stop := d.started, d.stop
	d.lifeMu.Unlock()
	if started {
		stop()
		<-d.stopped
	}
	return nil
}

// loop is the scheduler: it owns the per-webhook state, and leases jobs on a
// wake, when a request ends, and on its timer.
func (d *Dispatcher) loop(ctx, work context.Context) {
	var nextPoll, nextMaintain time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := d.now()
		if !now.Before(nextMaintain) {
			d.maintain(ctx, now)
			nextMaintain = now.Add(d.maintainEvery)
		}
		set := d.hooks()
		if d.sched.refresh(set) {
			d.budgets()
			d.sweepAll = true
		}
		d.dropSeries(set)
		if !now.Before(nextPoll) {
			d.sched.checkAll()
			nextPoll = now.Add(d.pollEvery)
		}
		d.takeWakes()
		d.takeHanded()
		more := d.schedule(ctx, work)

		now = d.now()
		d.publish(now)
		next := minTime(nextPoll, nextMaintain)
		if more {
			next = now
		}
		if t := d.sched.nextEvent(now); !t.IsZero() {
			next = minTime(next, t)
		}
		if d.storeRetryAt.After(now) {
			next = minTime(next, d.storeRetryAt)
		}
		timer.Reset(max(0, next.Sub(now)))
		select {
		case <-ctx.Done():
			return
		case <-d.wakeCh:
		case r := <-d.done:
			d.ended(r)
		case <-timer.C:
		}
	}
}

func (d *Dispatcher) takeWakes() {
	d.wakeMu.Lock()
	var woken map[string]bool
	if len(d.woken) > 0 {
		woken, d.woken = d.woken, map[string]bool{}
	}
	all := d.wakeAll
	d.wakeAll = false
	d.wakeMu.Unlock()
	if all {
		d.sched.checkAll()
	}
	d.sched.wake(woken, d.now())
}

// scheduleRounds bounds the lease rounds of one turn of the loop.
const scheduleRounds = 4

// schedule starts what the fairness rules allow: jobs handed off that wait
// for a slot, and jobs it leases. It asks again while the store had fewer
// jobs than asked for and workers are left: every round marks the webhooks
// that came up short as having nothing due, so the rounds converge. After
// scheduleRounds it stops, so that the loop takes in finished requests and
// wakes, and reports more: webhooks may still have due jobs, and the loop
// must come back at once rather than wait for an event. (A round asks
// Workers webhooks at most: after a poll marks 4,000 webhooks, of which a
// few have jobs, the sweep takes 4000/Workers rounds.)
func (d *Dispatcher) schedule(ctx, work context.Context) (more bool) {
	for range scheduleRounds {
		if ctx.Err() != nil {
			return false
		}
		// Drain finished requests first: their workers are free again.
		for drained := false; !drained; {
			select {
			case r := <-d.done:
				d.ended(r)
			default:
				drained = true
			}
		}
		now := d.now()
		// After the drain: a request that just failed paused its webhook.
		d.sweepWaiting(now)
		if now.Before(d.storeRetryAt) {
			return false
		}
		want := d.sched.plan(now)
		if want == nil {
			return false
		}
		d.startWaiting(work, want, now)
		if len(want) == 0 {
			continue
		}
		// Not cancelled with ctx: jobs the store leased must reach a worker.
		res, err := d.queue.Lease(d.storeCtx.get(), store.LeaseRequest{Now: now, For: d.lease, Want: want})
		if err != nil {
			d.storeFailed(now, "lease", err)
			return false
		}
		d.storeDelay = 0
		d.sched.leased(now, want, res.Next)
		asked := 0
		for _, n := range want {
			asked += n
		}
		for _, l := range res.Leases {
			d.start(work, l)
		}
		if len(res.Leases) >= asked {
			return false
		}
	}
	return true
}

func (d *Dispatcher) start(work context.Context, l store.Lease) {
	d.sched.started(l.WebhookID)
	d.wg.Add(1)
	job := func() {
		r, entry := d.deliver(work, l)
		if r.kind == delivered {
			d.takeAckSlot()
		}
		d.done <- r
		if r.kind == delivered {
			d.ack(l, entry)
			<-d.acking
		}
	}
	select {
	case d.idle <- job:
	default:
		go d.worker(job)
	}
}

// worker runs job, then the jobs start gives it, until there are maxIdle
// workers waiting already or Run has ended.
func (d *Dispatcher) worker(job func()) {
	for {
		job()
		d.wg.Done()
		if d.idleN.Add(1) > d.maxIdle {
			d.idleN.Add(-1)
			return
		}
		select {
		case job = <-d.idle:
			d.idleN.Add(-1)
		case <-d.quit:
			d.idleN.Add(-1)
			return
		}
	}
}

// ended takes in a finished request, and shows a webhook's change of
// health: in its failing gauges (set from its first attempt in this process
// that failed or succeeded, then on each change) and in the log.
func (d *Dispatcher) ended(r result) {
	failing, recovered := d.sched.ended(r)
	if r.kind == failed {
		d.sweepAll = true // paused, or failing: its waiting jobs go back
	}
	_, shown := d.series[r.webhookID]
	firstSuccess := r.kind == delivered && !shown
	if !failing && !recovered && !firstSuccess {
		return
	}
	log := d.log.WithField("webhookId", r.webhookID)
	// A webhook deleted meanwhile gets no series back.
	if h := d.hook(r.webhookID); h != nil {
		log = log.WithField("webhook", h.Name)
		d.showHealth(r.webhookID, h.Name, failing, r.at)
	}
	if !failing && !recovered {
		return
	}
	if failing {
		log.Warn("webhook failing: one request at a time until a delivery succeeds")
	} else {
		log.Info("webhook recovered")
	}
}

// showHealth sets a webhook's failing gauges: failing since the attempt
// that started at since, or not failing.
func (d *Dispatcher) showHealth(id, name string, failing bool, since time.Time) {
	d.series[id] = name
	if failing {
		d.metrics.failing.WithLabelValues(name).Set(1)
		d.metrics.failingSince.WithLabelValues(name).Set(float64(since.UnixNano()) / 1e9)
		return
	}
	d.metrics.failing.WithLabelValues(name).Set(0)
	d.metrics.failingSince.DeleteLabelValues(name)
}

// dropSeries removes the failing gauges of the webhooks that are no longer
// in set, when set is new.
func (d *Dispatcher) dropSeries(set *rule.Set) {
	if set == d.seriesSet || len(d.series) == 0 {
		d.seriesSet = set
		return
	}
	d.seriesSet = set
	for id, name := range d.series {
		if set != nil {
			if h, ok := set.ByID(id); ok && h.Name == name {
				continue
			}
		}
		d.metrics.failing.DeleteLabelValues(name)
		d.metrics.failingSince.DeleteLabelValues(name)
		delete(d.series, id)
	}
}

func (d *Dispatcher) maintain(ctx context.Context, now time.Time) {
	mctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	m, err := d.queue.Maintain(mctx, now, d.retry.MaxAge)
	if err != nil {
		if ctx.Err() == nil {
			d.metrics.storeError("maintain")
			d.log.WithError(err).Warn("deliver: queue maintenance failed")
		}
		return
	}
	d.metrics.dead.WithLabelValues(deadExpired).Add(float64(m.Expired))
	if m.Reclaimed > 0 || m.Expired > 0 {
		d.log.WithFields(logrus.Fields{"reclaimed": m.Reclaimed, "expired": m.Expired}).Info("deliver: queue maintained")
	}
	if m.Reclaimed > 0 {
		d.sched.checkAll()
	}
}

// storeFailed backs leasing off, from 100ms doubling to 5s, after a store
// error.
func (d *Dispatcher) storeFailed(now time.Time, op string, err error) {
	d.metrics.storeError(op)
	d.storeDelay = min(max(2*d.storeDelay, 100*time.Millisecond), 5*time.Second)
	d.storeRetryAt = now.Add(d.storeDelay)
	d.log.WithError(err).WithField("retryIn", d.storeDelay).Warnf("deliver: %s failed", op)
}

// drain ends Run: it waits up to the grace for requests in flight, then
// cancels the rest, whose workers release their jobs.
func (d *Dispatcher) drain(cancelWork context.CancelFunc) {
	if d.sched.inFlight > 0 && d.grace > 0 {
		grace := time.NewTimer(d.grace)
		defer grace.Stop()
	wait:
		for d.sched.inFlight > 0 {
			select {
			case r := <-d.done:
				d.ended(r)
			case <-grace.C:
				break wait
			}
		}
	}
	cancelWork()
	for d.sched.inFlight > 0 {
		d.ended(<-d.done)
	}
	d.waitJobs()
}

// ackFlusher is a Queue whose acks wait for others to commit with (the
// Redis store's): FlushAcks commits those waiting now.
type ackFlusher interface{ FlushAcks() }

// takeAckSlot takes a slot for an ack about to commit. When none is free,
// every ack allowed is waiting for its commit, and none can join them until
// one ends: a store whose acks wait for others is told to commit them now.
func (d *Dispatcher) takeAckSlot() {
	select {
	case d.acking <- struct{}{}:
		return
	default:
	}
	if f, ok := d.queue.(ackFlusher); ok {
		f.FlushAcks()
	}
	d.acking <- struct{}{}
}

// waitJobs waits for the workers' jobs to end, acks included. Once the
// requests have ended no more acks are coming, so on a store whose acks
// wait for others to commit with, those still to commit are flushed as
// they come (every millisecond) rather than wait out their linger.
func (d *Dispatcher) waitJobs() {
	f, ok := d.queue.(ackFlusher)
	if !ok {
		d.wg.Wait()
		return
	}
	ended := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(ended)
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		f.FlushAcks()
		select {
		case <-ended:
			return
		case <-tick.C:
		}
	}
}
