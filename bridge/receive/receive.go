// Package receive is the endpoint the registry posts its notifications to.
// It answers 2xx only once every job of an envelope is committed to the
// store, so the registry's own retries carry an envelope across any failure
// until regwebhook holds it durably.
package receive

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/distribution/distribution/v3/notifications"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/payload"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/internal/bearer"
)

// Ingester commits an envelope's index changes, event ids and jobs at once.
type Ingester interface {
	Ingest(ctx context.Context, fn func(store.Tx) error) error
}

// Handoff takes jobs from the receiver straight to this process's
// dispatcher (deliver.Dispatcher; see its handoff.go): a job committed
// leased to this process is delivered from memory, without a lease call.
type Handoff interface {
	// Reserve takes a place for a job of the webhook, for a lease of the
	// returned length; false when the job is to be queued.
	Reserve(webhookID string) (lease time.Duration, ok bool)
	// Unreserve gives back n reservations not handed.
	Unreserve(webhookID string, n int)
	// Hand gives the dispatcher the committed jobs' leases.
	Hand(leases []store.Lease)
}

// Params configures a Handler.
type Params struct {
	Store        Ingester
	Hooks        func() *rule.Set // the current webhooks
	Token        string           // when set, the registry must send "Authorization: Bearer <Token>"
	MaxBodyBytes int64
	DedupeTTL    time.Duration // how long an event id is remembered
	// Wake is told the webhooks that got new jobs, after they are committed.
	Wake func(webhookIDs ...string)
	// Handoff, when set and the store's transactions offer it
	// (store.HandoffTx), takes the jobs it has workers for.
	Handoff    Handoff
	Now        func() time.Time
	Log        logrus.FieldLogger
	Registerer prometheus.Registerer // nil: no metrics
	// StoreErrors counts failed store calls by op (label "op"); an envelope
	// not committed is op "ingest". It is registered by the caller, who
	// shares it with other components. nil: not counted.
	StoreErrors *prometheus.CounterVec
}

// Handler serves POST /v1/notifications.
type Handler struct {
	p Params
	m *metrics
}

// New returns a Handler.
func New(p Params) *Handler {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Wake == nil {
		p.Wake = func(...string) {}
	}
	return &Handler{p: p, m: newMetrics(p.Registerer)}
}

// deliveryNS namespaces delivery ids, which are derived from the event id
// and the webhook id: an event enqueued twice for one webhook is one job.
var deliveryNS = uuid.MustParse("6f1c1d4e-6a34-4d39-9a39-5a4d0f3b7e21")

// DeliveryID returns the delivery id of an event's job for a webhook:
// uuid.NewSHA1(deliveryNS, eventID+"\x00"+webhookID), the same bytes, made
// in a buffer on the stack (every job of every envelope takes one, and
// NewSHA1 made five allocations).
func DeliveryID(eventID, webhookID string) string {
	var buf [160]byte
	b := append(append(append(append(buf[:0], deliveryNS[:]...), eventID...), 0), webhookID...)
	sum := sha1.Sum(b)
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122's variant
	return u.String()
}

// ServeHTTP checks, in order, auth, content type, size and parse, then
// commits the envelope. See SPEC §2 for every answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if h.p.Token != "" && !bearer.Match(r.Header.Get("Authorization"), h.p.Token) {
		h.p.Log.WithField("remote", r.RemoteAddr).Warn("notification refused: missing or wrong receiver token; check the registry's notifications.endpoints headers")
		h.reject(w, r, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
		return
	}
	if ct := r.Header.Get("Content-Type"); !jsonType(ct) {
		h.reject(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("content type %q is not JSON; want %s", ct, payload.Envelope))
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, h.p.MaxBodyBytes), r.ContentLength, h.p.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.reject(w, r, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("body is over %d bytes (receiver.maxbodybytes)", h.p.MaxBodyBytes))
			return
		}
		h.reject(w, r, http.StatusBadRequest, "invalid", "read body: "+err.Error())
		return
	}
	raws, err := event.ParseEnvelope(body)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	res, err := h.commit(r.Context(), raws)
	if err != nil {
		if h.p.StoreErrors != nil {
			h.p.StoreErrors.WithLabelValues("ingest").Inc()
		}
		h.p.Log.WithError(err).Error("notification not stored; the registry will retry it")
		h.reject(w, r, http.StatusServiceUnavailable, "unavailable", "store unavailable, retry later")
		return
	}
	h.m.count(res)
	if len(res.woken) > 0 {
		h.p.Wake(res.woken...)
	}
	writeCounts(w, res.accepted, res.dropped)
}

// result is what committing an envelope did.
type result struct {
	accepted, dropped int
	received          map[event.Action]int
	drops             map[event.Reason]int
	woken             []string
}

// parsed is an envelope's event that passed event.Parse.
type parsed struct {
	n   notifications.Event
	raw json.RawMessage
}

// commit normalizes every event of an envelope, matches it against the
// webhooks and enqueues its jobs, in one store transaction.
//
// Events that need nothing of the store are settled first, without it: blob
// pushes and pulls, actions regwebhook does not take (mount), and pulls of
// manifests that no webhook takes (Normalize reads and changes the index
// only for pushes and deletes). An envelope of those alone is answered
// without a store transaction, so a registry's pulls and blob uploads cost
// no write. Nothing of them would be stored anyway: they change no index,
// and only events that get jobs are remembered for dedupe.
func (h *Handler) commit(ctx context.Context, raws []json.RawMessage) (result, error) {
	pre := result{received: map[event.Action]int{}, drops: map[event.Reason]int{}}
	now := h.p.Now().UTC()
	hooks := h.p.Hooks()
	debug := debugOn(h.p.Log)
	var todo []parsed // events that need the store's transaction
	for _, raw := range raws {
		n, err := event.Parse(raw)
		if err != nil {
			pre.drop(event.Invalid)
			h.p.Log.WithError(err).WithField("event", string(raw)).Warn("invalid event dropped")
			continue
		}
		ev, reason, err := event.Normalize(ctx, n, raw, noIndex{})
		switch {
		case err != nil: // it asked the index: a push or a delete
			todo = append(todo, parsed{n, raw})
		case reason != event.Kept:
			pre.drop(reason)
			if debug {
				h.p.Log.WithFields(logrus.Fields{"event": n.ID, "action": n.Action, "reason": reason}).Debug("event dropped")
			}
		case ev.Action == event.Pull && len(hooks.Match(&ev)) == 0:
			pre.accepted++
			pre.received[ev.Action]++
		default:
			todo = append(todo, parsed{n, raw})
		}
	}
	if len(todo) == 0 {
		return pre, nil
	}
	var res result
	var ho handing
	err := h.p.Store.Ingest(ctx, func(tx store.Tx) error {
		// Ingest may run this again: start from what needed no store each time.
		res = result{accepted: pre.accepted, dropped: pre.dropped, received: maps.Clone(pre.received), drops: maps.Clone(pre.drops)}
		ho.start(h.p.Handoff, tx)
		woken := map[string]bool{}
		for _, p := range todo {
			seen, err := tx.Seen(ctx, p.n.ID)
			if err != nil {
				return fmt.Errorf("check event %q: %w", p.n.ID, err)
			}
			if seen {
				res.accepted++ // a retry of an event already committed
				continue
			}
			ev, reason, err := event.Normalize(ctx, p.n, p.raw, tx)
			if err != nil {
				return fmt.Errorf("normalize event %q: %w", p.n.ID, err)
			}
			if reason != event.Kept {
				res.drop(reason)
				if debug {
					h.p.Log.WithFields(logrus.Fields{"event": p.n.ID, "action": p.n.Action, "reason": reason}).Debug("event dropped")
				}
				continue
			}
			res.accepted++
			res.received[ev.Action]++
			matched := hooks.Match(&ev)
			if len(matched) == 0 && ev.Action == event.Pull {
				continue // nothing changed, nothing to remember
			}
			var payloads renders
			for _, hook := range matched {
				handed, err := enqueue(ctx, tx, &ev, hook, now, &payloads, &ho)
				if err != nil {
					return err
				}
				if !handed {
					woken[hook.ID] = true
				}
			}
			if err := tx.MarkSeen(ctx, ev.ID, now.Add(h.p.DedupeTTL)); err != nil {
				return fmt.Errorf("mark event %q seen: %w", ev.ID, err)
			}
		}
		for id := range woken {
			res.woken = append(res.woken, id)
		}
		return nil
	})
	ho.finish(err == nil)
	return res, err
}

// handing is what one envelope's commit hands off: the workers it reserved,
// by webhook, and the transaction that leased their jobs.
type handing struct {
	to       Handoff
	tx       store.HandoffTx // nil: no hand-off
	reserved map[string]int
}

// start begins a run of Ingest's fn: reservations of an earlier run (whose
// transaction did not commit) are given back.
func (ho *handing) start(to Handoff, tx store.Tx) {
	ho.finish(false)
	ho.to, ho.tx = to, nil
	if htx, ok := tx.(store.HandoffTx); ok && to != nil {
		ho.tx = htx
	}
}

// finish hands the dispatcher the jobs committed leased, and gives back the
// reservations of the others (none committed when the commit failed).
func (ho *handing) finish(committed bool) {
	if len(ho.reserved) == 0 {
		return
	}
	if committed {
		leases := ho.tx.Handed()
		for _, l := range leases {
			ho.reserved[l.WebhookID]--
		}
		ho.to.Hand(leases)
	}
	for id, n := range ho.reserved {
		ho.to.Unreserve(id, n)
	}
	clear(ho.reserved)
}

// enqueueLeased queues job leased to this process when a worker is free for
// it, and reports whether it did.
func (ho *handing) enqueueLeased(ctx context.Context, job store.Job) (bool, error) {
	if ho.tx == nil {
		return false, nil
	}
	lease, ok := ho.to.Reserve(job.WebhookID)
	if !ok {
		return false, nil
	}
	if ho.reserved == nil {
		ho.reserved = map[string]int{}
	}
	ho.reserved[job.WebhookID]++
	return true, ho.tx.EnqueueLeased(ctx, job, job.Created.Add(lease))
}

// errNeedsIndex is what noIndex answers.
var errNeedsIndex = errors.New("the event needs the index")

// noIndex is the index of an event settled without the store: any use of it
// means the event needs the store's transaction after all.
type noIndex struct{}

func (noIndex) Manifest(context.Context, string, string) (string, []string, bool, error) {
	return "", nil, false, errNeedsIndex
}

func (noIndex) Tag(context.Context, string, string) (string, string, bool, error) {
	return "", "", false, errNeedsIndex
}

func (noIndex) PutManifest(context.Context, string, string, string, string) error {
	return errNeedsIndex
}
func (noIndex) DeleteTag(context.Context, string, string) error      { return errNeedsIndex }
func (noIndex) DeleteManifest(context.Context, string, string) error { return errNeedsIndex }

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

func (r *result) drop(reason event.Reason) {
	r.dropped++
	r.drops[reason]++
}

// renders are an event's payloads rendered so far, one per format: the
// webhooks of one format get the same bytes, rendered once.
type renders []rendered

type rendered struct {
	format      rule.Format
	body        string // its jobs' Payload
	contentType string
}

// render returns ev's payload in format f.
func (r *renders) render(f rule.Format, ev *event.Event) (string, string, error) {
	for _, p := range *r {
		if p.format == f {
			return p.body, p.contentType, nil
		}
	}
	b, contentType, err := payload.Render(f, ev)
	if err != nil {
		return "", "", err
	}
	body := string(b)
	*r = append(*r, rendered{f, body, contentType})
	return body, contentType, nil
}

// enqueue renders ev for hook (or takes it from those already rendered) and
// queues the job, or hands it off when ho can; handed reports which.
func enqueue(ctx context.Context, tx store.Tx, ev *event.Event, hook *rule.Webhook, now time.Time, payloads *renders, ho *handing) (handed bool, err error) {
	body, contentType, err := payloads.render(hook.Format, ev)
	if err != nil {
		return false, fmt.Errorf("render event %q for webhook %q: %w", ev.ID, hook.Name, err)
	}
	job := store.Job{
		ID:          DeliveryID(ev.ID, hook.ID),
		WebhookID:   hook.ID,
		EventID:     ev.ID,
		Action:      string(ev.Action),
		Payload:     body,
		ContentType: contentType,
		Created:     now,
		Due:         now,
	}
	if hook.Status == rule.Enabled {
		if handed, err = ho.enqueueLeased(ctx, job); err != nil || handed {
			if err != nil {
				err = fmt.Errorf("enqueue event %q for webhook %q: %w", ev.ID, hook.Name, err)
			}
			return handed, err
		}
	}
	if err := tx.Enqueue(ctx, job); err != nil {
		return false, fmt.Errorf("enqueue event %q for webhook %q: %w", ev.ID, hook.Name, err)
	}
	return false, nil
}

// readBody reads a request's body into one buffer of the size the request
// announced (when it did, and within limit), rather than growing one.
func readBody(body io.Reader, announced, limit int64) ([]byte, error) {
	size := int64(512)
	if announced >= 0 && announced < limit {
		size = announced + 1 // room to read EOF without growing
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// jsonTypes are the content types an envelope may come with.
var jsonTypes = map[string]bool{
	"application/json": true,
	"application/vnd.docker.distribution.events.v1+json": true,
	payload.Envelope: true,
}

func jsonType(ct string) bool {
	if jsonTypes[ct] {
		return true // as a registry sends it: no parameters to parse
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && jsonTypes[mt]
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	h.m.rejected.WithLabelValues(code).Inc()
	if status != http.StatusUnauthorized && status != http.StatusServiceUnavailable {
		h.p.Log.WithFields(logrus.Fields{"status": status, "remote": r.RemoteAddr}).Warn("notification refused: " + msg)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeCounts answers an envelope taken with the bytes writeJSON writes for
// map[string]int{"accepted": accepted, "dropped": dropped}, without
// encoding/json's reflection and sorting of the map's keys, which took
// about 1.5 % of regwebhook's CPU time under load (a profile with 16
// connections on Redis).
func writeCounts(w http.ResponseWriter, accepted, dropped int) {
	var buf [64]byte
	b := append(buf[:0], `{"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, `,"dropped":`...)
	b = strconv.AppendInt(b, int64(dropped), 10)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
