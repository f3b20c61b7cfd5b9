package sqlite

import (
	"sync"
	"time"
)

// leases are the jobs held by this process: leased to a worker, or about to
// be dead-lettered by a Maintain not yet committed. They are kept in memory,
// not in the database.
//
// One process at a time opens a store (the lock file), and a process that
// ends loses its workers: every lease of a previous process has ended by
// the time the store is open again. So a lease needs no durability, and
// taking one costs no write: a lease is a read of the queue, a delivery
// costs one write (its ack) besides its job's insert. What a crash forgets is
// the attempt in flight: the job is leased again with the attempts it had.
// A job handed off (store.HandoffTx) is held from its insert, before its
// write commits, and let go of if that write is undone (see Ingest).
//
// Lease reads the queue on its own connection with mu held, so a job that
// some write in flight is about to change is still held while that write
// commits: writes change or delete held jobs only, and let go of them once
// committed (see Ack, Fail, Maintain).
type leases struct {
	mu     sync.Mutex
	byID   map[string]held
	byHook map[string]map[string]int64 // webhook id: job id: row
}

// held is one held job.
type held struct {
	webhookID string
	seq       int64  // its row in queue
	token     string // "" for a job held by a Maintain
	until     time.Time
	attempts  int // counting the attempt this lease is for
	created   time.Time
	// handed: the job was handed off (leased by the write that queued it),
	// so its webhook had no backlog then (see canWait).
	handed bool
}

func newLeases() *leases {
	return &leases{byID: map[string]held{}, byHook: map[string]map[string]int64{}}
}

// add holds job id; the caller holds mu.
func (ls *leases) add(id string, h held) {
	if old, ok := ls.byID[id]; ok {
		ls.unhook(id, old.webhookID)
	}
	ls.byID[id] = h
	if ls.byHook[h.webhookID] == nil {
		ls.byHook[h.webhookID] = map[string]int64{}
	}
	ls.byHook[h.webhookID][id] = h.seq
}

// drop lets go of job id when token still holds it, and reports whether it
// did; the caller holds mu.
func (ls *leases) drop(id, token string) bool {
	h, ok := ls.byID[id]
	if !ok || h.token != token {
		return false
	}
	delete(ls.byID, id)
	ls.unhook(id, h.webhookID)
	return true
}

func (ls *leases) unhook(id, webhookID string) {
	delete(ls.byHook[webhookID], id)
	if len(ls.byHook[webhookID]) == 0 {
		delete(ls.byHook, webhookID)
	}
}

// rows returns the rows of a webhook's held jobs; the caller holds mu.
func (ls *leases) rows(webhookID string) []int64 {
	out := make([]int64, 0, len(ls.byHook[webhookID]))
	for _, seq := range ls.byHook[webhookID] {
		out = append(out, seq)
	}
	return out
}

// get returns the lease of job id when token holds it.
func (ls *leases) get(id, token string) (held, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	h, ok := ls.byID[id]
	return h, ok && token != "" && h.token == token
}

// release lets go of job id when token holds it.
func (ls *leases) release(id, token string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.drop(id, token)
}

// leased returns the ids of the jobs leased to workers (not those a
// Maintain holds); never nil, as SQL's NOT IN (NULL) is never true.
func (ls *leases) leased() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ids := []string{}
	for id, h := range ls.byID {
		if h.token != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// dropWebhook lets go of the leases of a webhook's jobs (it was deleted).
func (ls *leases) dropWebhook(webhookID string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for id := range ls.byHook[webhookID] {
		if h := ls.byID[id]; h.token != "" {
			ls.drop(id, h.token)
		}
	}
}
