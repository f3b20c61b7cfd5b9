package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// maxIngestAttempts bounds how often Ingest runs fn when concurrent ingests
// keep changing what it read. Each conflict means another one committed, so
// this is reached only under a storm of copies of one envelope; the error
// is then ErrUnavailable and the registry sends the envelope again.
const maxIngestAttempts = 50

// Ingest runs fn, then commits what it wrote with one script that first
// checks that everything fn read still reads the same (optimistic
// concurrency): if so the writes apply at once, in order; if not nothing is
// written and fn runs again on the new state. Concurrent copies of one
// envelope therefore commit once: the first to commit marks the event ids,
// and the others' reads of those marks no longer hold.
//
// fn's reads see its own writes. fn's error is returned as it is.
//
// The first run guesses that no event id was seen (a registry retry is
// rare) instead of asking Redis, and the commit checks the guess like any
// other read: an envelope of new events then commits in one round trip. A
// wrong guess makes fn run again at once, this time on what Redis answers.
func (s *Store) Ingest(ctx context.Context, fn func(store.Tx) error) error {
	for attempt := 1; ; attempt++ {
		// Room for an envelope of one event and a few jobs, so that the
		// writes and leases do not grow from nothing one append at a time.
		tx := &ingestTx{s: s, guess: attempt == 1, writes: make([]any, 0, 64), leases: make([]store.Lease, 0, 4)}
		if err := fn(tx); err != nil {
			return err
		}
		ok, err := tx.commit(ctx)
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		if ok {
			return nil
		}
		if attempt == maxIngestAttempts {
			return fmt.Errorf("ingest: %w: %d attempts conflicted with concurrent ingests", store.ErrUnavailable, attempt)
		}
		if tx.guessed {
			continue // the guess was wrong, or raced: no other transaction to step aside for
		}
		// A little jitter, so that the same transactions do not meet again.
		pause := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
		select {
		case <-ctx.Done():
			pause.Stop()
			return fmt.Errorf("ingest: %w: %w", store.ErrUnavailable, ctx.Err())
		case <-pause.C:
		}
	}
}

// ingestTx is the store.Tx of one run of Ingest's fn: the reads it made with
// their answers, the writes it buffered, and those writes' effect on what it
// reads next.
type ingestTx struct {
	s      *Store
	reads  []any // kind, a, b, answer; per read
	writes []any // op and its values; per write, as commitScript takes them
	// guess: answer Seen "not seen" without asking; guessed: it did.
	guess, guessed bool

	seen      map[string]bool
	manifests map[repoKey]*string // media type; nil: deleted
	tags      map[repoKey]*tagRef // nil: deleted

	// leases: those EnqueueLeased asked for, with tokens base.1, base.2, …;
	// skipped: the tokens of those whose job existed, once committed.
	leases  []store.Lease
	base    string
	skipped map[string]bool

	// entry and handing: the jobs bound for inbox entries (Store.in), in
	// order, those handed off in handing; handed: the bytes of the entry
	// of those handed off, and buffered: those of the entries of the
	// others for this process's buffer, as the last commit sent them;
	// queuedTo: the webhooks of the jobs bound for the queue.
	entry    []entryJob
	handing  []entryJob
	handed   string
	buffered []bufferedEntry
	queuedTo []string
}

var _ store.HandoffTx = (*ingestTx)(nil)

// bufferedEntry is an entry a commit sends for this process's buffer.
type bufferedEntry struct {
	raw  string
	jobs int
}

// repoKey is a digest or a tag of a repository.
type repoKey struct{ repo, name string }

// tagRef is the manifest a tag points at.
type tagRef struct{ digest, mediaType string }

// read asks Redis, and remembers the answer for commit to check.
func (t *ingestTx) read(ctx context.Context, kind, a, b string) (string, error) {
	ans, err := t.s.run(ctx, readScript, nil, kind, a, b).Text()
	if err != nil {
		return "", classify(err)
	}
	t.reads = append(t.reads, kind, a, b, ans)
	return ans, nil
}

// commit runs commitScript; false when a read no longer holds. A run that
// wrote nothing and asked Redis once needs no check: that one answer was
// the state.
func (t *ingestTx) commit(ctx context.Context) (bool, error) {
	nreads := len(t.reads) / 4
	entries := len(t.entry) + len(t.handing)
	if len(t.writes) == 0 && entries == 0 && (nreads == 0 || nreads == 1 && !t.guessed) {
		return true, nil
	}
	var ans []any
	for {
		args := make([]any, 0, 1+len(t.reads)+len(t.writes)+2*entries+16)
		args = append(append(append(args, nreads), t.reads...), t.writes...)
		args = t.entries(args)
		var err error
		ans, err = t.s.runScript(ctx, commitScript, t.s.keys("queued", "created", "leased", "leases"), args...).Slice()
		if err != nil {
			if entries > 0 {
				t.s.in.lost()
			}
			return false, fmt.Errorf("commit: %w", classify(err))
		}
		if len(ans) > 0 && ans[0] == int64(2) {
			t.leaveOut(ans[1:]) // jobs that exist: commit without them
			continue
		}
		if len(ans) == 0 || ans[0] != int64(1) {
			return false, nil
		}
		break
	}
	inboxed := false
	for _, token := range ans[1:] {
		s, _ := token.(string)
		if s == inboxedAnswer {
			inboxed = true
			continue
		}
		if t.skipped == nil {
			t.skipped = map[string]bool{}
		}
		t.skipped[s] = true
	}
	t.committedEntries(inboxed)
	if t.s.in != nil && len(t.queuedTo) > 0 {
		t.s.in.queued(t.queuedTo...)
	}
	return true, nil
}

// Seen reports whether eventID is marked, by this transaction or before it
// and not yet expired.
func (t *ingestTx) Seen(ctx context.Context, eventID string) (bool, error) {
	if t.seen[eventID] {
		return true, nil
	}
	if t.guess {
		t.guessed = true
		t.reads = append(t.reads, "S", eventID, "", "0")
		return false, nil
	}
	ans, err := t.read(ctx, "S", eventID, "")
	if err != nil {
		return false, fmt.Errorf("check event %q seen: %w", eventID, err)
	}
	return ans == "1", nil
}

// MarkSeen marks eventID until until (Redis forgets it then by itself).
func (t *ingestTx) MarkSeen(_ context.Context, eventID string, until time.Time) error {
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	t.seen[eventID] = true
	ms := max(until.UnixMilli(), 1)
	t.writes = append(t.writes, "seen", eventID, strconv.FormatInt(ms, 10))
	return nil
}

// Enqueue queues j unless a job with its ID exists (queued or leased) when
// the transaction commits.
func (t *ingestTx) Enqueue(_ context.Context, j store.Job) error {
	if t.toEntry(j) {
		t.entry = append(t.entry, entryJob{job: j})
		return nil
	}
	t.queuedTo = append(t.queuedTo, j.WebhookID)
	t.writes = append(append(t.writes, "job", j.ID), jobArgs(j)...)
	return nil
}

// EnqueueLeased adds j leased until until, unless a job with its ID exists
// when the transaction commits: it is then in `leases` and `leased` as a
// job Lease took, and in none of the queue's indexes.
func (t *ingestTx) EnqueueLeased(_ context.Context, j store.Job, until time.Time) error {
	if t.base == "" {
		t.base = newToken()
	}
	l := store.Lease{Job: j, Token: t.base + "." + strconv.Itoa(len(t.leases)+1), Until: until}
	l.Attempts++
	t.leases = append(t.leases, l)
	if t.toEntry(j) {
		t.handing = append(t.handing, entryJob{job: j, lease: len(t.leases) - 1})
		return nil
	}
	t.writes = append(append(append(t.writes, "ljob", j.ID), jobArgs(j)...), l.Token, nanos(until))
	return nil
}

// Handed returns the leases of the jobs EnqueueLeased added: those it
// asked for, but for jobs that existed (rare: a copy of an envelope).
func (t *ingestTx) Handed() []store.Lease {
	if len(t.skipped) == 0 {
		return t.leases
	}
	out := make([]store.Lease, 0, len(t.leases))
	for _, l := range t.leases {
		if !t.skipped[l.Token] {
			out = append(out, l)
		}
	}
	return out
}

// Manifest returns the media type of a manifest the index knows, and the
// tags that point at it, sorted.
func (t *ingestTx) Manifest(ctx context.Context, repo, digest string) (mediaType string, tags []string, ok bool, err error) {
	mine, changed := t.manifests[repoKey{repo, digest}]
	if changed && mine == nil {
		return "", nil, false, nil
	}
	ans, err := t.read(ctx, "M", repo, digest)
	if err != nil {
		return "", nil, false, fmt.Errorf("look up manifest %s@%s: %w", repo, digest, err)
	}
	if ans != "" {
		if mediaType, tags, err = decodeManifest(ans); err != nil {
			return "", nil, false, fmt.Errorf("look up manifest %s@%s: %w", repo, digest, err)
		}
	} else if !changed {
		return "", nil, false, nil
	}
	if changed {
		mediaType = *mine
	}
	// The tags this transaction moved.
	set := make(map[string]bool, len(tags))
	for _, tag := range tags {
		set[tag] = true
	}
	for k, ref := range t.tags {
		if k.repo == repo {
			set[k.name] = ref != nil && ref.digest == digest
		}
	}
	tags = tags[:0]
	for tag, on := range set {
		if on {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	return mediaType, tags, true, nil
}

// decodeManifest reads read's M answer: "+", the number of tags, each tag,
// then the media type, one a line (the media type last, as it alone could
// hold a newline).
func decodeManifest(ans string) (mediaType string, tags []string, err error) {
	count, rest, _ := strings.Cut(strings.TrimPrefix(ans, "+"), "\n")
	n, err := strconv.Atoi(count)
	if err != nil {
		return "", nil, fmt.Errorf("bad index answer %q", ans)
	}
	for range n {
		var tag string
		tag, rest, _ = strings.Cut(rest, "\n")
		tags = append(tags, tag)
	}
	return rest, tags, nil
}

// Tag returns the manifest a tag points at. It answers even after that
// manifest was deleted, until the tag's own delete.
func (t *ingestTx) Tag(ctx context.Context, repo, tag string) (digest, mediaType string, ok bool, err error) {
	if ref, changed := t.tags[repoKey{repo, tag}]; changed {
		if ref == nil {
			return "", "", false, nil
		}
		return ref.digest, ref.mediaType, true, nil
	}
	ans, err := t.read(ctx, "T", repo, tag)
	if err != nil {
		return "", "", false, fmt.Errorf("look up tag %s:%s: %w", repo, tag, err)
	}
	if ans == "" {
		return "", "", false, nil
	}
	digest, mediaType, _ = strings.Cut(strings.TrimPrefix(ans, "+"), "\n")
	return digest, mediaType, true, nil
}

// PutManifest records a manifest and, when tag is not empty, points tag at it.
func (t *ingestTx) PutManifest(_ context.Context, repo, digest, mediaType, tag string) error {
	if t.manifests == nil {
		t.manifests = map[repoKey]*string{}
	}
	t.manifests[repoKey{repo, digest}] = &mediaType
	if tag != "" {
		t.setTag(repoKey{repo, tag}, &tagRef{digest, mediaType})
	}
	t.writes = append(t.writes, "put", repo, digest, mediaType, tag)
	return nil
}

// DeleteTag forgets a tag.
func (t *ingestTx) DeleteTag(_ context.Context, repo, tag string) error {
	t.setTag(repoKey{repo, tag}, nil)
	t.writes = append(t.writes, "deltag", repo, tag)
	return nil
}

// DeleteManifest forgets a manifest; its tags stay until their own deletes.
func (t *ingestTx) DeleteManifest(_ context.Context, repo, digest string) error {
	if t.manifests == nil {
		t.manifests = map[repoKey]*string{}
	}
	t.manifests[repoKey{repo, digest}] = nil
	t.writes = append(t.writes, "delman", repo, digest)
	return nil
}

func (t *ingestTx) setTag(k repoKey, ref *tagRef) {
	if t.tags == nil {
		t.tags = map[repoKey]*tagRef{}
	}
	t.tags[k] = ref
}

// toEntry reports whether j goes into an inbox entry: the store has an
// inbox, j is due when made, and no job of this transaction has its id
// (Enqueue keeps the first).
func (t *ingestTx) toEntry(j store.Job) bool {
	if t.s.in == nil || !inboxJob(j) {
		return false
	}
	for _, jobs := range [...][]entryJob{t.entry, t.handing} {
		for _, e := range jobs {
			if e.job.ID == j.ID {
				return false
			}
		}
	}
	return true
}

// entries adds to args the writes of the transaction's inbox entries: of
// jobs handed off, and of the others, for this process's buffer while it
// has room, else for the inbox.
func (t *ingestTx) entries(args []any) []any {
	t.handed, t.buffered = "", nil
	if len(t.entry) > 0 {
		dest := "i"
		if t.s.in.room() {
			dest = "b"
		}
		// A transaction of many jobs (not a registry's envelope) makes
		// several entries, so that a take holds a bounded number of jobs.
		for jobs := t.entry; len(jobs) > 0; {
			n := min(maxEntryJobs, len(jobs))
			args = t.entryArgs(args, jobs[:n], dest)
			jobs = jobs[n:]
		}
	}
	if len(t.handing) > 0 {
		// Jobs handed off are few (as many as workers are free): one entry.
		args = t.entryArgs(args, t.handing, "h")
	}
	return args
}

// maxEntryJobs bounds the jobs of an entry of the inbox.
const maxEntryJobs = 64

// entryArgs adds to args the writes of one entry of jobs, for dest (see
// commitScript's ibox).
func (t *ingestTx) entryArgs(args []any, jobs []entryJob, dest string) []any {
	prefix := ""
	if dest == "h" {
		prefix = handedMark
	}
	entry, counts := entryOf(prefix, jobs)
	n := len(jobs)
	until := time.Now().Add(heartbeat) // this process's holders score, for "b"
	var made time.Time
	for _, e := range jobs {
		args = append(args, "ijob", e.job.ID)
		if dest == "h" && t.leases[e.lease].Until.After(until) {
			until = t.leases[e.lease].Until
		}
		if e.job.Created.After(made) {
			made = e.job.Created
		}
	}
	// The buffer keeps the list's bytes: LREM finds the entry by them.
	switch dest {
	case "h":
		t.handed = entry
	case "b":
		t.buffered = append(t.buffered, bufferedEntry{raw: entry, jobs: n})
	}
	return append(args, "ibox", entry, dest, counts, n, t.s.process, micros(until), micros(made))
}

// leaveOut takes the jobs whose ids the commit found out of the entries;
// those handed off are not handed.
func (t *ingestTx) leaveOut(ids []any) {
	out := map[string]bool{}
	for _, id := range ids {
		s, _ := id.(string)
		out[s] = true
	}
	t.entry = slices.DeleteFunc(t.entry, func(e entryJob) bool { return out[e.job.ID] })
	t.handing = slices.DeleteFunc(t.handing, func(e entryJob) bool {
		if !out[e.job.ID] {
			return false
		}
		if t.skipped == nil {
			t.skipped = map[string]bool{}
		}
		t.skipped[t.leases[e.lease].Token] = true
		return true
	})
}

// inboxedAnswer is the commit's answer for an entry bound for this
// process's buffer that went to the inbox, which held entries: then so did
// each such entry after it.
const inboxedAnswer = "~inbox"

// committedEntries gives the inbox the committed entries on this process's
// list: that of jobs handed off, with their leases, and the buffered ones,
// unless they went to the inbox (inboxed).
func (t *ingestTx) committedEntries(inboxed bool) {
	if t.handed == "" && len(t.buffered) == 0 {
		return
	}
	now := time.Now()
	var entries []pendingEntry
	if t.handed != "" {
		leases := make(map[string]store.Lease, len(t.handing))
		for _, e := range t.handing {
			leases[e.job.ID] = t.leases[e.lease]
		}
		entries = append(entries, pendingEntry{raw: t.handed, leases: leases, at: now})
	}
	if !inboxed {
		for _, b := range t.buffered {
			entries = append(entries, pendingEntry{raw: b.raw, at: now, jobs: b.jobs})
		}
	}
	t.s.in.committed(entries, inboxed)
}
