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
// the attempt in flight: it is counted again when the job is leased again.
//
// Lease reads the queue on its own connection with mu held, so a job that
// some write in flight is about to change is still held while that write
// commits: writes change or delete held jobs only, and let go of them once
// committed (see Ack, Fail, Maintain).
type leases struct {
	mu   sync.Mutex
	byID map[string]held
}

// held is one held job.
type held struct {
	webhookID string
	seq       int64  // its row in queue
	token     string // "" for a job held by a Maintain
	until     time.Time
	attempts  int // counting the attempt this lease is for
	created   time.Time
}

func newLeases() *leases {
	return &leases{byID: map[string]held{}}
}

// add holds job id; the caller holds mu.
func (ls *leases) add(id string, h held) {
	ls.byID[id] = h
}

// drop lets go of job id when token still holds it, and reports whether it
// did; the caller holds mu.
func (ls *leases) drop(id, token string) bool {
	h, ok := ls.byID[id]
	if !ok || h.token != token {
		return false
	}
	delete(ls.byID, id)
	return true
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

// dropWebhook lets go of the leases of a webhook's jobs (it was deleted).
func (ls *leases) dropWebhook(webhookID string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for id, h := range ls.byID {
		if h.webhookID == webhookID && h.token != "" {
			ls.drop(id, h.token)
		}
	}
}
