package webhooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Refresh makes the store's webhooks the set in force, when they differ from
// it: for a store that other processes change too (store.Shared). Config-file
// webhooks are taken as the store has them, as the last process to load its
// file left them. An unchanged set stays the same *rule.Set.
func (m *Manager) Refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept, err := m.store.Webhooks(ctx)
	if err != nil {
		return fmt.Errorf("refresh webhooks: %w", err)
	}
	if sameWebhooks(m.cur.Load().All(), kept) {
		return nil
	}
	set, err := rule.NewSet(kept)
	if err != nil {
		return fmt.Errorf("refresh webhooks: %w", err)
	}
	m.cur.Store(set)
	return nil
}

// sameWebhooks reports whether a and b hold the same webhooks, in any order,
// as a store keeps them.
func sameWebhooks(a, b []*rule.Webhook) bool {
	if len(a) != len(b) {
		return false
	}
	byID := make(map[string][]byte, len(a))
	for _, w := range a {
		byID[w.ID] = encode(w)
	}
	for _, w := range b {
		if enc, ok := byID[w.ID]; !ok || !bytes.Equal(enc, encode(w)) {
			return false
		}
	}
	return true
}

// encode is w as stores keep it; a webhook that cannot be encoded (it
// never happens) encodes as nothing and so differs from any other.
func encode(w *rule.Webhook) []byte {
	b, _ := store.EncodeWebhook(w)
	return b
}

// configHash digests the config file's webhooks, ids aside, in name order.
func configHash(fromConfig []*rule.Webhook) string {
	hooks := make([]*rule.Webhook, len(fromConfig))
	copy(hooks, fromConfig)
	sort.Slice(hooks, func(i, j int) bool { return hooks[i].Name < hooks[j].Name })
	h := sha256.New()
	for _, w := range hooks {
		c := *w
		c.Source = rule.FromConfig
		h.Write(encode(&c))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WatchParams configure Watch.
type WatchParams struct {
	Store store.Shared
	// Every is how often the store's webhooks version is read; default 250ms,
	// so that a change made through any process is in force in all of them
	// within a second.
	Every time.Duration
	// AnnounceEvery is how often this process announces the digest of its
	// config-file webhooks and compares it with the others'; default 5s.
	AnnounceEvery time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log; default discards.
	Log logrus.FieldLogger
}

// Watch follows, until ctx ends, what other processes sharing the store do
// to webhooks. Every p.Every it reads the store's webhooks version and, when
// it changed, Refreshes. Every p.AnnounceEvery it announces the digest of
// the config-file webhooks this process loaded, and logs a warning when
// other processes announce another digest: their config files differ, and
// whichever loaded last decides the config webhooks all of them use. Store
// errors are logged once until it answers again.
func (m *Manager) Watch(ctx context.Context, p WatchParams) {
	if p.Every <= 0 {
		p.Every = 250 * time.Millisecond
	}
	if p.AnnounceEvery <= 0 {
		p.AnnounceEvery = 5 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		p.Log = l
	}
	w := watcher{m: m, p: p}
	tick := time.NewTicker(p.Every)
	defer tick.Stop()
	var nextAnnounce time.Time
	for {
		w.follow(ctx)
		if now := p.Now(); !now.Before(nextAnnounce) {
			w.announce(ctx, now)
			nextAnnounce = now.Add(p.AnnounceEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watcher is the state of one Watch.
type watcher struct {
	m       *Manager
	p       WatchParams
	version string
	synced  bool   // version is the one last refreshed for
	failing bool   // the last store call failed, and was logged
	differ  string // the other processes' digests last warned about
}

// follow refreshes when the store's webhooks version moved.
func (w *watcher) follow(ctx context.Context) {
	v, err := w.p.Store.WebhooksVersion(ctx)
	if err == nil && (!w.synced || v != w.version) {
		if err = w.m.Refresh(ctx); err == nil {
			w.version, w.synced = v, true
		}
	}
	w.storeAnswered(ctx, err)
}

// announce publishes this process's config digest and warns when another
// process's differs.
func (w *watcher) announce(ctx context.Context, now time.Time) {
	mine := w.m.configHash.Load()
	if mine == nil {
		return
	}
	all, err := w.p.Store.Announce(ctx, *mine, now)
	w.storeAnswered(ctx, err)
	if err != nil {
		return
	}
	var others []string
	for process, hash := range all {
		if hash != *mine {
			others = append(others, process+"="+short(hash))
		}
	}
	sort.Strings(others)
	differ := strings.Join(others, " ")
	switch {
	case differ != "" && differ != w.differ:
		w.p.Log.WithFields(logrus.Fields{"mine": short(*mine), "others": differ}).Warn(
			"webhooks: other processes sharing the store read different config-file webhooks; " +
				"the last to load its file decides the config webhooks all of them use: give them the same file")
	case differ == "" && w.differ != "":
		w.p.Log.Info("webhooks: every process sharing the store reads the same config-file webhooks again")
	}
	w.differ = differ
}

// storeAnswered logs a store error once, and the store's return.
func (w *watcher) storeAnswered(ctx context.Context, err error) {
	switch {
	case err != nil && !w.failing && ctx.Err() == nil:
		w.failing = true
		w.p.Log.WithError(err).Warn("webhooks: cannot follow changes made by other processes; retrying")
	case err == nil && w.failing:
		w.failing = false
		w.p.Log.Info("webhooks: following changes made by other processes again")
	}
}

// short is the start of a digest, enough to tell digests apart in a log.
func short(hash string) string { return hash[:min(len(hash), 12)] }
