package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/batch"
)

// The inbox (docs/redis.md, "Inbox"): the new jobs of an envelope, due when
// made, are one entry of the list inbox, their counts by webhook the entry
// at the same place of inboxn. A process takes entries onto its own list
// held:<process> and keeps their jobs in a buffer, from which Lease serves
// them; an entry leaves the process's list once each of its jobs is acked,
// failed, released, buried or dropped. Jobs handed off at commit go
// straight onto the process's list, leased, and a commit's others too
// while the buffer has room and the inbox is empty. A job of an entry is
// a member of the set ij while the entry holds it. A process that dies
// stops raising its score in holders, and another one's Maintain puts the
// jobs of its list back on the inbox.

const (
	// inboxTake is how many entries a take moves at most.
	inboxTake = 16
	// inboxCap is how many jobs the buffer holds before it takes no more.
	inboxCap = 512
	// heartbeat is how far ahead of now Maintain raises this process's
	// holders score (it runs every second): a process not heard from for
	// that long is taken for dead.
	heartbeat = 30 * time.Second
	// spillAfter is how long a job may wait in the buffer before it goes
	// to its webhook's queue: a webhook that is slow, failing or disabled
	// must not hold the buffer's room.
	spillAfter = 2 * time.Second
)

// inbox is this process's part of the inbox: its buffer and its leases.
type inbox struct {
	s    *Store
	list string // held:<process>
	// once is a client of the same Redis that never retries a call.
	once *redis.Client

	mu  sync.Mutex
	buf map[string][]*ijob // by webhook, not leased, by due then id
	// nbuf is the number of jobs in buf, written with in.mu held; a
	// commit reads it without (room).
	nbuf   atomic.Int64
	leased map[string]*ijob // by lease token
	// entries are those of this process's list, by their bytes.
	entries map[string]*ientry
	base    string // of lease tokens
	seq     int
	// moved: jobs leased from the buffer whose counts Redis has not moved
	// from buffered to leased yet, and the latest end of their leases, to
	// raise this process's holders score to (sent with the next round
	// trip).
	moved      int
	movedUntil time.Time
	// version of the webhooks when gone was read; gone: deleted webhooks.
	version string
	gone    map[string]bool
	// unsure: a take failed midway; its entries may be on the list and
	// not in the buffer (Maintain reads the list again).
	unsure bool
	// more: the last take found as many entries as it asked for, so the
	// inbox may hold more.
	more bool
	// What this process knows of each webhook's queue, to lease from it
	// only when it may hold due jobs: when it asked last (wall clock), and
	// the earliest due time it answered (none: empty); dirty: webhooks
	// this process queued jobs of since.
	qasked map[string]time.Time
	qnext  map[string]time.Time
	dirty  map[string]bool

	acks *batch.Runner[*inackCall]

	// What commits put on this process's list since in.mu was last taken,
	// for the buffer and the leases (see lock): a commit, which the
	// registry waits for, waits for pmu alone, never for in.mu, which a
	// Lease holds for its round trips. more and lost as the fields above.
	pmu         sync.Mutex
	pending     []pendingEntry
	pendingMore bool
	pendingLost bool
	// npending: the jobs of the buffered entries of pending (room).
	npending atomic.Int64
}

// pendingEntry is an entry a commit put on this process's list: leases,
// by job id, for the entry of jobs handed off; nil for one buffered.
type pendingEntry struct {
	raw    string
	leases map[string]store.Lease
	at     time.Time
	jobs   int // buffered: how many
}

// lock takes in.mu and adds what commits left pending.
func (in *inbox) lock() {
	in.mu.Lock()
	in.pmu.Lock()
	pending, more, lost := in.pending, in.pendingMore, in.pendingLost
	in.pending, in.pendingMore, in.pendingLost = nil, false, false
	in.pmu.Unlock()
	in.more = in.more || more
	in.unsure = in.unsure || lost
	for _, e := range pending {
		in.npending.Add(int64(-e.jobs))
		if err := in.add(e.raw, e.leases, e.at); err != nil {
			in.unsure = true // Maintain reads the list again
		}
	}
}

// committed leaves entries a commit put on this process's list for the
// next lock; inboxed: entries bound for the buffer went to the inbox.
func (in *inbox) committed(entries []pendingEntry, inboxed bool) {
	in.pmu.Lock()
	defer in.pmu.Unlock()
	in.pending = append(in.pending, entries...)
	in.pendingMore = in.pendingMore || inboxed
	for _, e := range entries {
		in.npending.Add(int64(e.jobs))
	}
}

// ientry is an entry of this process's list.
type ientry struct {
	raw  string
	left int // jobs not done
}

// ijob is a job of an entry.
type ijob struct {
	job   store.Job // as made: Attempts before any lease
	entry *ientry
	since time.Time // buffered at
	token string    // when leased
	until time.Time
}

func newInbox(s *Store) *inbox {
	opt := *s.c.Options()
	opt.MaxRetries = -1
	in := &inbox{s: s, list: s.key("held:" + s.process), once: redis.NewClient(&opt), buf: map[string][]*ijob{},
		leased: map[string]*ijob{}, entries: map[string]*ientry{}, base: "i" + newToken(),
		qasked: map[string]time.Time{}, qnext: map[string]time.Time{}, dirty: map[string]bool{}}
	in.acks = batch.NewLinger(maxPipeline, s.ackLinger, in.runAcks)
	return in
}

// room reports whether a commit's entries go to this process's buffer
// rather than the inbox: while the buffer holds less than a quarter of
// what it holds at most, as when the dispatcher keeps up, a commit's jobs
// are served at once, with no take. A fuller buffer is filled by takes,
// in the inbox's order, which the replicas share.
func (in *inbox) room() bool {
	return in.nbuf.Load()+in.npending.Load() < inboxCap/4
}

// inboxJob reports whether j goes into an entry: a first attempt, due
// when made, made about now.
func inboxJob(j store.Job) bool {
	if j.Attempts != 0 || j.Redelivery || !j.Due.Equal(j.Created) {
		return false
	}
	d := time.Since(j.Created)
	return d < time.Minute && d > -time.Minute
}

// entryOf encodes jobs as an entry, after prefix, and their counts by
// webhook. The entry, the largest thing an envelope writes (it holds its
// jobs' payloads), is sized before it is written and is a string at once:
// grown by appends, then copied to a string for the buffer, it was
// allocated some four times over. Jobs that all have one payload (the
// webhooks of an event in one format) carry it once (sharedMark).
func entryOf(prefix string, jobs []entryJob) (entry string, counts []byte) {
	shared, one := sharedPayload(jobs)
	size := len(prefix)
	if one {
		size += len(sharedMark) + maxHead + len(shared)
	}
	for _, j := range jobs {
		// shared is "" unless written once above: sized so, the string
		// holds no room for copies it does not have.
		size += len(j.job.ID) + len(j.job.WebhookID) + jobLen(j.job) - len(shared) + 3*maxHead
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(prefix)
	if one {
		b.WriteString(sharedMark)
		writeNetstring(&b, shared)
	}
	var order []string
	by := map[string]int{}
	for _, e := range jobs {
		j := e.job
		if one {
			j.Payload = ""
		}
		writeNetstring(&b, j.ID)
		writeNetstring(&b, j.WebhookID)
		writeHead(&b, jobLen(j))
		writeJob(&b, j)
		if by[j.WebhookID] == 0 {
			order = append(order, j.WebhookID)
		}
		by[j.WebhookID]++
	}
	// As the scripts read them (countsTotal, countsOf): the number of
	// jobs, '|', then per webhook its id and its number.
	counts = append(strconv.AppendInt(counts, int64(len(jobs)), 10), '|')
	for _, w := range order {
		counts = appendNetstring(counts, w)
		counts = appendNetstring(counts, strconv.Itoa(by[w]))
	}
	return b.String(), counts
}

// sharedPayload returns the payload of jobs, when there are two or more
// and all have the same one.
func sharedPayload(jobs []entryJob) (string, bool) {
	if len(jobs) < 2 {
		return "", false
	}
	p := jobs[0].job.Payload
	for _, j := range jobs[1:] {
		if j.job.Payload != p {
			return "", false
		}
	}
	return p, true
}

// sharedMark starts an entry (after handedMark) whose jobs all have one
// payload: it follows, as a netstring, and each job's string ends without
// it. An entry of four webhooks carried four copies, which Redis's Lua
// hashes byte by byte in the commit's arguments (docs/benchmarks-history.md,
// "Twenty-first round").
const sharedMark = "P"

// entryJobs reads an entry: whether its jobs were handed off at commit,
// and its jobs, each job's payload its own or the entry's shared one.
func entryJobs(raw string) (handed bool, jobs []store.Job, err error) {
	rest, handed := strings.CutPrefix(raw, handedMark)
	rest, one := strings.CutPrefix(rest, sharedMark)
	var shared string
	if one {
		var ok bool
		if shared, rest, ok = cutNetstring(rest); !ok {
			return handed, nil, fmt.Errorf("inbox entry: bad shared payload at %q", truncate(rest))
		}
	}
	for rest != "" {
		var f [3]string // id, webhook, job string
		for k := range f {
			var ok bool
			if f[k], rest, ok = cutNetstring(rest); !ok {
				return handed, nil, fmt.Errorf("inbox entry: bad field %d of job %d at %q", k+1, len(jobs)+1, truncate(rest))
			}
		}
		j, err := decodeJob(f[0], f[2])
		if err != nil {
			return handed, nil, err
		}
		if one {
			j.Payload = shared
		}
		jobs = append(jobs, j)
	}
	return handed, jobs, nil
}

// entryJob is a job of an Ingest transaction bound for an entry.
type entryJob struct {
	job   store.Job
	lease int // of a job handed off: its lease's index in ingestTx.leases
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// add puts entry raw, taken or committed, into the buffer; leases (for
// jobs handed off) are its jobs already leased, by id. in.mu is held.
func (in *inbox) add(raw string, leases map[string]store.Lease, now time.Time) error {
	if in.entries[raw] != nil {
		// Buffered already: a resync read it while the take that moved it
		// was on its way back (an entry's bytes hold its jobs' ids, which
		// no other entry has).
		return nil
	}
	handed, jobs, err := entryJobs(raw)
	if err != nil {
		return err
	}
	e := &ientry{raw: raw}
	in.entries[raw] = e
	for _, j := range jobs {
		ij := &ijob{job: j, entry: e, since: now}
		e.left++
		if l, ok := leases[j.ID]; ok {
			ij.token, ij.until = l.Token, l.Until
			in.leased[l.Token] = ij
			continue
		}
		if leases == nil && handed {
			// Handed off by a commit whose answer was lost: leased to no
			// worker, so its lease has run out.
			in.seq++
			ij.token = in.base + "." + strconv.Itoa(in.seq)
			in.leased[ij.token] = ij
			continue
		}
		in.push(ij)
	}
	return nil
}

// handedMark starts an entry of jobs handed off at commit on a process's
// list (an entry taken from the inbox starts with a digit): its jobs are
// counted leased, not buffered.
const handedMark = "H"

// push adds j to the buffer in its place.
func (in *inbox) push(j *ijob) {
	b := in.buf[j.job.WebhookID]
	at := sort.Search(len(b), func(i int) bool {
		o := b[i].job
		return o.Due.After(j.job.Due) || o.Due.Equal(j.job.Due) && o.ID > j.job.ID
	})
	b = append(b, nil)
	copy(b[at+1:], b[at:])
	b[at] = j
	in.buf[j.job.WebhookID] = b
	in.nbuf.Add(1)
}

// remove takes j out of the buffer.
func (in *inbox) remove(j *ijob) {
	b := in.buf[j.job.WebhookID]
	for i, o := range b {
		if o == j {
			in.buf[j.job.WebhookID] = append(b[:i:i], b[i+1:]...)
			in.nbuf.Add(-1)
			return
		}
	}
}

// finishing returns the bytes of the entries whose last jobs not done
// are jobs, to remove from the list with them.
func finishing(jobs []*ijob) []string {
	count := map[*ientry]int{}
	var out []string
	for _, j := range jobs {
		count[j.entry]++
		if count[j.entry] == j.entry.left {
			out = append(out, j.entry.raw)
		}
	}
	return out
}

// done counts jobs out of their entries, once Redis has them done.
// in.mu is held.
func (in *inbox) done(jobs []*ijob) {
	for _, j := range jobs {
		if j.entry.left--; j.entry.left == 0 {
			delete(in.entries, j.entry.raw)
		}
	}
}

// take moves up to inboxTake entries from the inbox to this process's
// list and buffers their jobs; it reports whether the inbox had as many.
// in.mu is held, and let go of for the round trip (see lease).
func (in *inbox) take(ctx context.Context, now, until time.Time) (more bool, err error) {
	s := in.s
	// Not retried: a take that ran twice would move entries this process
	// never reads (a take whose answer is lost leaves them to resync).
	pipe := in.once.TxPipeline()
	counts := s.call(ctx, pipe, takeScript, nil, s.process, inboxTake, micros(until))
	moves := make([]*redis.StringCmd, inboxTake)
	for i := range moves {
		moves[i] = pipe.LMove(ctx, s.key("inbox"), in.list, "LEFT", "RIGHT")
	}
	version := pipe.Get(ctx, s.key("webhooks:version"))
	in.flushMoved(ctx, pipe)
	in.mu.Unlock()
	_, err = pipe.Exec(ctx)
	in.lock()
	if err != nil && !errors.Is(err, redis.Nil) {
		in.unsure = true // the LMOVEs ran, whatever the script did
		if notLoaded(counts.Err()) {
			// A Redis that lost its functions lost its data too: the
			// LMOVEs found nothing. The next Lease takes again.
			return true, s.load(ctx)
		}
		return true, fmt.Errorf("take inbox entries: %w", classify(err))
	}
	taken, err := counts.Slice()
	if err != nil {
		in.unsure = true
		return true, fmt.Errorf("take inbox entries: %w", classify(err))
	}
	if err := in.readGone(ctx, version.Val()); err != nil {
		return true, err
	}
	for i := range taken {
		raw, err := moves[i].Result()
		if err != nil {
			in.unsure = true
			return true, fmt.Errorf("take inbox entry %d of %d: %w", i+1, len(taken), err)
		}
		if err := in.add(raw, nil, now); err != nil {
			return true, err
		}
	}
	if err := in.dropGone(ctx); err != nil {
		return true, err
	}
	return len(taken) == inboxTake, nil
}

// readGone reads the deleted webhooks when their version is not the one
// read last, and drops their jobs from the buffer. in.mu is held.
func (in *inbox) readGone(ctx context.Context, version string) error {
	if version == in.version && in.gone != nil {
		return nil
	}
	ids, err := in.s.c.SMembers(ctx, in.s.key("gone")).Result()
	if err != nil {
		return fmt.Errorf("read deleted webhooks: %w", classify(err))
	}
	in.version, in.gone = version, map[string]bool{}
	for _, id := range ids {
		in.gone[id] = true
	}
	return in.dropGone(ctx)
}

// dropGone drops the buffered and leased jobs of deleted webhooks. in.mu
// is held.
func (in *inbox) dropGone(ctx context.Context) error {
	if len(in.gone) == 0 {
		return nil // no webhook deleted: nothing to look for
	}
	var buffered, leased []*ijob
	for w, b := range in.buf {
		if in.gone[w] {
			buffered = append(buffered, b...)
		}
	}
	for _, j := range in.leased {
		if in.gone[j.job.WebhookID] {
			leased = append(leased, j)
		}
	}
	now := time.Now()
	if err := in.move(ctx, buffered, "drop", "b", now); err != nil {
		return err
	}
	return in.move(ctx, leased, "drop", "l", now)
}

// flushMoved adds to pipe the moves of counts from buffered to leased of
// the jobs leased from the buffer since the last round trip.
func (in *inbox) flushMoved(ctx context.Context, pipe redis.Pipeliner) {
	in.movedNow()(ctx, pipe)
}

// movedNow takes the counts flushMoved sends, for a pipeline built
// without in.mu. in.mu is held.
func (in *inbox) movedNow() func(context.Context, redis.Pipeliner) {
	moved, until := in.moved, in.movedUntil
	in.moved = 0
	return func(ctx context.Context, pipe redis.Pipeliner) {
		if moved == 0 {
			return
		}
		h := in.s.key("hcount")
		pipe.HIncrBy(ctx, h, in.s.process+":b", int64(-moved))
		pipe.HIncrBy(ctx, h, in.s.process+":l", int64(moved))
		pipe.ZAddGT(ctx, in.s.key("holders"), redis.Z{Score: float64(until.UnixMicro()), Member: in.s.process})
	}
}

// lease serves req from the buffer, taking entries while a webhook asked
// cannot be served and the inbox has more, and from the queue for the
// rest.
func (in *inbox) lease(ctx context.Context, req store.LeaseRequest) (store.LeaseResult, error) {
	in.lock()
	locked := true
	defer func() {
		if locked {
			in.mu.Unlock()
		}
	}()
	until := req.Now.Add(req.For)
	if in.nbuf.Load() >= inboxCap && in.short(req) {
		// Full, of jobs of webhooks not asked (at their limit, failing,
		// paused): those go to their queues, so that the buffer takes
		// entries for the others (the isolation of issue 7).
		var spill []*ijob
		for w, b := range in.buf {
			if req.Want[w] == 0 {
				spill = append(spill, b...)
			}
		}
		if err := in.move(ctx, spill, "requeue", "b", time.Now()); err != nil {
			return store.LeaseResult{}, err
		}
	}
	// The buffer holds inboxCap jobs besides those the request asks for.
	room := inboxCap
	for _, n := range req.Want {
		room += n
	}
	for tried := false; (!tried || in.more) && in.nbuf.Load() < int64(room) && in.short(req); tried = true {
		var err error
		if in.more, err = in.take(ctx, time.Now(), until); err != nil {
			return store.LeaseResult{}, err
		}
	}
	// The queue leases its jobs that come before the buffer's, for the
	// webhooks whose queue may have due jobs.
	wall := time.Now()
	ask := store.LeaseRequest{Now: req.Now, For: req.For, Want: map[string]int{}}
	for w, n := range req.Want {
		if in.mayQueue(w, req.Now, wall) {
			ask.Want[w] = n
		}
	}
	dues := map[string]string{}
	for w, n := range ask.Want {
		var d []string
		for _, j := range in.buf[w] {
			if len(d) == n || j.job.Due.After(req.Now) {
				break
			}
			d = append(d, micros(j.job.Due))
		}
		dues[w] = strings.Join(d, ",")
	}
	res := store.LeaseResult{Next: map[string]time.Time{}}
	if len(ask.Want) > 0 {
		// Without in.mu for the round trip, which commits' entries and
		// acks need meanwhile: the buffer serves below what it holds then,
		// within what the request asks.
		flush := in.movedNow()
		in.mu.Unlock()
		locked = false
		var err error
		res, err = in.s.leaseQueue(ctx, ask, dues, flush)
		in.lock()
		locked = true
		if err != nil {
			return store.LeaseResult{}, err
		}
		for w := range ask.Want {
			in.queueSeen(w, res.Next, wall)
		}
	}
	for w := range req.Want {
		if _, asked := ask.Want[w]; !asked {
			if t, ok := in.qnext[w]; ok {
				res.Next[w] = t
			}
		}
	}
	fromQueue := map[string]int{}
	for _, l := range res.Leases {
		fromQueue[l.WebhookID]++
	}
	// Room for the leases from the buffer at once: a lease is some 200
	// bytes, and growing the slice lease by lease copied them over again.
	fromBuf := 0
	for w, n := range req.Want {
		fromBuf += min(n, len(in.buf[w]))
	}
	res.Leases = slices.Grow(res.Leases, fromBuf)
	for w, n := range req.Want {
		b := in.buf[w]
		k := 0
		for k < len(b) && fromQueue[w]+k < n && !b[k].job.Due.After(req.Now) {
			j := b[k]
			in.seq++
			j.token, j.until = in.base+"."+strconv.Itoa(in.seq), until
			in.leased[j.token] = j
			l := store.Lease{Job: j.job, Token: j.token, Until: until}
			l.Attempts++
			res.Leases = append(res.Leases, l)
			k++
		}
		in.buf[w] = b[k:]
		in.nbuf.Add(int64(-k))
		in.moved += k
		if k > 0 && until.After(in.movedUntil) {
			in.movedUntil = until
		}
		if len(in.buf[w]) == 0 {
			delete(in.buf, w)
			if _, ok := res.Next[w]; !ok && (in.more || in.nbuf.Load() >= inboxCap) {
				// The inbox holds entries not taken, which may be its.
				res.Next[w] = req.Now
			}
			continue
		}
		if at, ok := res.Next[w]; !ok || in.buf[w][0].job.Due.Before(at) {
			res.Next[w] = in.buf[w][0].job.Due
		}
	}
	return res, nil
}

// queueStale is how long what a process knows of a webhook's queue holds:
// other processes queue jobs (retries, redeliveries) it learns of no
// sooner. The dispatcher polls every webhook as often.
const queueStale = time.Second

// mayQueue reports whether the queue of webhook w may hold jobs due at
// now: this process queued some since it asked, or asked more than
// queueStale ago (wall clock), or the queue answered a due time not after
// now. in.mu is held.
func (in *inbox) mayQueue(w string, now, wall time.Time) bool {
	asked, ok := in.qasked[w]
	if !ok || in.dirty[w] || wall.Sub(asked) > queueStale {
		return true
	}
	next, ok := in.qnext[w]
	return ok && !next.After(now)
}

// queueSeen records what the queue answered for w. in.mu is held.
func (in *inbox) queueSeen(w string, next map[string]time.Time, wall time.Time) {
	in.qasked[w] = wall
	if t, ok := next[w]; ok {
		in.qnext[w] = t
	} else {
		delete(in.qnext, w)
	}
	delete(in.dirty, w)
}

// queued marks webhooks whose queue this process put jobs in; with none,
// every webhook's.
func (in *inbox) queued(webhooks ...string) {
	in.lock()
	defer in.mu.Unlock()
	in.markQueued(webhooks...)
}

// markQueued is queued with in.mu held.
func (in *inbox) markQueued(webhooks ...string) {
	if len(webhooks) == 0 {
		in.qasked = map[string]time.Time{}
		return
	}
	for _, w := range webhooks {
		in.dirty[w] = true
	}
}

// short reports whether the buffer lacks due jobs for a webhook of req.
func (in *inbox) short(req store.LeaseRequest) bool {
	for w, n := range req.Want {
		b := in.buf[w]
		if n > 0 && (len(b) < n || b[n-1].job.Due.After(req.Now)) {
			return true
		}
	}
	return false
}

// held takes the job of a lease token out of the leases, if it is one of
// the inbox's.
func (in *inbox) held(token string) (*ijob, bool) {
	in.lock()
	defer in.mu.Unlock()
	j, ok := in.leased[token]
	delete(in.leased, token)
	return j, ok
}

// inackCall is one Ack of an inbox job.
type inackCall struct {
	ctx   context.Context
	j     *ijob
	entry []byte
}

// ack finishes a delivered job of an entry, in a batch with others (as
// Store.Ack's).
func (in *inbox) ack(ctx context.Context, j *ijob, e history.Entry) error {
	entry, err := in.s.entries.Encode(e)
	if err != nil {
		return fmt.Errorf("ack job %q: encode history entry: %w", j.job.ID, err)
	}
	defer in.s.entries.Release(entry)
	if err := in.acks.Do(&inackCall{ctx: ctx, j: j, entry: *entry}); err != nil {
		return fmt.Errorf("ack job %q: %w", j.job.ID, err)
	}
	return nil
}

// runAcks acks calls in one transaction: the history entries pushed as
// runAcks (batch.go) pushes them, inackScript, and an LREM of each entry
// whose last job this is.
func (in *inbox) runAcks(calls []*inackCall) []error {
	s := in.s
	errs := make([]error, len(calls))
	ctx := context.Background()
	h := newHistories(s.limits.History + 16)
	for _, c := range calls {
		h.add(c.j.job.WebhookID, c.entry)
	}
	args := make([]any, 0, 2+3*len(calls))
	args = append(args, s.process, "i")
	for _, c := range calls {
		args = append(args, c.j.job.ID, c.j.job.WebhookID, h.at(c.j.job.WebhookID))
	}
	jobs := make([]*ijob, len(calls))
	for i, c := range calls {
		jobs[i] = c.j
	}
	in.lock()
	gone := finishing(jobs)
	in.mu.Unlock()
	pipe := s.c.TxPipeline()
	h.push(ctx, s, pipe)
	cmd := s.call(ctx, pipe, inackScript, nil, args...)
	for _, raw := range gone {
		pipe.LRem(ctx, in.list, 1, raw)
	}
	_, _ = pipe.Exec(ctx)
	err := cmd.Err()
	if notLoaded(err) {
		args[1] = "v"
		for k, c := range calls {
			args[2+3*k+2] = c.entry
		}
		cmd = s.run(ctx, inackScript, nil, args...)
		if err = cmd.Err(); err == nil && len(gone) > 0 {
			rem := s.c.Pipeline()
			for _, raw := range gone {
				rem.LRem(ctx, in.list, 1, raw)
			}
			_, err = rem.Exec(ctx)
		}
	}
	var ok []int64
	if err == nil {
		ok, err = cmd.Int64Slice()
	}
	if err == nil && len(ok) != len(calls) {
		err = fmt.Errorf("inackScript answered %d results for %d jobs", len(ok), len(calls))
	}
	in.lock()
	defer in.mu.Unlock()
	if err != nil {
		// Held again, as if never acked: Maintain puts them in the queue
		// once their leases run out, unless the transaction did run (their
		// ids left ij then, and Maintain leaves them).
		for _, j := range jobs {
			in.leased[j.token] = j
		}
		for i := range calls {
			errs[i] = classify(err)
		}
		return errs
	}
	in.done(jobs)
	for i := range calls {
		if ok[i] == 0 {
			errs[i] = store.ErrLeaseLost
		}
	}
	return errs
}

// move takes jobs out of this process's entries with inholdScript, in one
// pipeline: mode and counter as the script takes them. A job whose
// process no longer holds it is left alone. in.mu is held.
func (in *inbox) move(ctx context.Context, jobs []*ijob, mode, counter string, now time.Time) error {
	return in.moveWith(ctx, jobs, mode, counter, now, "")
}

// moveWith is move, with the error of the dead letters bury makes.
func (in *inbox) moveWith(ctx context.Context, jobs []*ijob, mode, counter string, now time.Time, deadError string) error {
	if len(jobs) == 0 {
		return nil
	}
	s := in.s
	keys := s.keys("queued", "created", "leased", "leases", "deadall", "seq")
	pipe := s.c.TxPipeline()
	cmds := make([]*redis.Cmd, len(jobs))
	for i, j := range jobs {
		jj := j.job
		if mode == "requeue" && j.token != "" {
			jj.Attempts++ // a lease run out: its attempt counts
		}
		str := encodeJob(jj)
		cmds[i] = s.call(ctx, pipe, inholdScript, keys, s.process, mode, counter, j.job.ID, str, j.token,
			micros(j.until), deadError, nanos(now), s.limits.DeadLetters)
	}
	for _, raw := range finishing(jobs) {
		pipe.LRem(ctx, in.list, 1, raw)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && notLoaded(cmds[0].Err()) {
		if err = s.load(ctx); err == nil {
			err = errors.New("the store's functions were not loaded; loaded now")
		}
	}
	if err != nil {
		// Where they were: a next Maintain or take tries again.
		return fmt.Errorf("move %d inbox jobs (%s): %w", len(jobs), mode, classify(err))
	}
	for _, j := range jobs {
		if counter == "b" {
			in.remove(j)
		} else {
			delete(in.leased, j.token)
		}
		if mode == "requeue" || mode == "hold" {
			in.markQueued(j.job.WebhookID)
		}
	}
	in.done(jobs)
	return nil
}

// hold makes the job of an inbox lease an ordinary leased job of the
// queue, for Fail and Release to go on with.
func (in *inbox) hold(ctx context.Context, j *ijob) error {
	in.lock()
	defer in.mu.Unlock()
	// held took the token out of the leases: move finds it by its job.
	in.leased[j.token] = j
	return in.move(ctx, []*ijob{j}, "hold", "l", time.Now())
}

// maintain raises this process's holders score, puts its leases that ran
// out by now in the queue, moves to their queues the jobs that waited in
// the buffer too long, buries those made more than maxAge before now (none
// when 0), and puts the jobs of dead processes back on the inbox. It
// returns the jobs reclaimed and expired.
func (in *inbox) maintain(ctx context.Context, now time.Time, maxAge time.Duration) (reclaimed, expired int, err error) {
	var cutoff time.Time
	if maxAge > 0 {
		cutoff = now.Add(-maxAge)
	}
	in.lock()
	defer in.mu.Unlock()
	s := in.s
	pipe := s.c.Pipeline()
	pipe.ZAddGT(ctx, s.key("holders"), redis.Z{Score: float64(now.Add(heartbeat).UnixMicro()), Member: s.process})
	version := pipe.Get(ctx, s.key("webhooks:version"))
	in.flushMoved(ctx, pipe)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("inbox heartbeat: %w", classify(err))
	}
	if err := in.readGone(ctx, version.Val()); err != nil {
		return 0, 0, err
	}
	if in.unsure {
		if err := in.resync(ctx, now); err != nil {
			return 0, 0, err
		}
	}
	var ran []*ijob
	for _, j := range in.leased {
		if !j.until.After(now) {
			ran = append(ran, j)
		}
	}
	if err := in.move(ctx, ran, "requeue", "l", now); err != nil {
		return 0, 0, err
	}
	reclaimed = len(ran)
	if !cutoff.IsZero() {
		// The inbox's first entries are its oldest: take them while they
		// hold a job made before cutoff.
		for range maintainBatch / inboxTake {
			head, err := s.c.LIndex(ctx, s.key("inbox"), 0).Result()
			if errors.Is(err, redis.Nil) {
				break
			}
			if err != nil {
				return reclaimed, 0, fmt.Errorf("read the inbox's first entry: %w", classify(err))
			}
			if !in.holdsOlder(head, cutoff) {
				break
			}
			if _, err := in.take(ctx, now, now.Add(heartbeat)); err != nil {
				return reclaimed, 0, err
			}
		}
	}
	var old, waited []*ijob
	for _, b := range in.buf {
		for _, j := range b {
			switch {
			case !cutoff.IsZero() && j.job.Created.Before(cutoff):
				old = append(old, j)
			case now.Sub(j.since) > spillAfter:
				waited = append(waited, j)
			}
		}
	}
	if err := in.moveWith(ctx, old, "bury", "b", now, store.ExpiredError(maxAge)); err != nil {
		return reclaimed, 0, err
	}
	if err := in.move(ctx, waited, "requeue", "b", now); err != nil {
		return reclaimed, len(old), err
	}
	n, err := s.run(ctx, reclaimScript, nil, "", micros(now), s.process, 10).Int()
	if err != nil {
		return reclaimed, len(old), fmt.Errorf("reclaim the jobs of dead processes: %w", classify(err))
	}
	return reclaimed + n, len(old), nil
}

// holdsOlder reports whether entry raw holds a job made before cutoff.
func (in *inbox) holdsOlder(raw string, cutoff time.Time) bool {
	_, jobs, err := entryJobs(raw)
	if err != nil {
		return false
	}
	for _, j := range jobs {
		if j.Created.Before(cutoff) {
			return true
		}
	}
	return false
}

// resync buffers the entries of this process's list that a failed take
// moved there without the buffer knowing. in.mu is held.
func (in *inbox) resync(ctx context.Context, now time.Time) error {
	raws, err := in.s.c.LRange(ctx, in.list, 0, -1).Result()
	if err != nil {
		return fmt.Errorf("read this process's inbox entries: %w", classify(err))
	}
	for _, raw := range raws {
		if in.entries[raw] == nil {
			if err := in.add(raw, nil, now); err != nil {
				return err
			}
		}
	}
	in.unsure = false
	return in.dropGone(ctx)
}

// release puts this process's jobs back on the inbox, for a process that
// closes.
func (in *inbox) release(ctx context.Context) error {
	in.lock()
	defer in.mu.Unlock()
	pipe := in.s.c.Pipeline()
	in.flushMoved(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	_, err := in.s.run(ctx, reclaimScript, nil, in.s.process, "0", in.s.process, 1).Result()
	in.once.Close()
	return err
}

// lost marks that a commit whose answer was lost may have put an entry of
// jobs handed off on this process's list: Maintain reads the list again.
func (in *inbox) lost() {
	in.pmu.Lock()
	in.pendingLost = true
	in.pmu.Unlock()
}

// dropWebhook drops the jobs of a webhook this process deleted.
func (in *inbox) dropWebhook(ctx context.Context, id string) error {
	in.lock()
	defer in.mu.Unlock()
	if in.gone == nil {
		in.gone = map[string]bool{}
	}
	in.gone[id] = true
	return in.dropGone(ctx)
}

// pendingCounts sends the counts of jobs leased from the buffer that
// Redis has not had yet, for Depth.
func (in *inbox) pendingCounts(ctx context.Context) error {
	in.lock()
	defer in.mu.Unlock()
	if in.moved == 0 {
		return nil
	}
	pipe := in.s.c.TxPipeline()
	in.flushMoved(ctx, pipe)
	_, err := pipe.Exec(ctx)
	return classify(err)
}
