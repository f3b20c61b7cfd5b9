package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// MaxLimit bounds limit= of events and dead letters.
const MaxLimit = 100000

// ping sends a ping now, records it in the webhook's history and answers its
// entry, 200 whatever the target answered: the entry says that. It works
// while the webhook is disabled, and is never retried.
func (a *api) ping(w http.ResponseWriter, r *http.Request) {
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	e, err := a.Pinger.Ping(r.Context(), h)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.Records.Record(r.Context(), e); err != nil {
		a.fail(w, r, fmt.Errorf("record the ping of webhook %q: %w", h.Name, err))
		return
	}
	fields := logrus.Fields{"webhook": h.Name, "delivery": e.ID, "remote": r.RemoteAddr}
	if e.Response != nil {
		fields["status"] = e.Response.StatusCode
	}
	a.Log.WithFields(fields).Info("webhook pinged")
	writeJSON(w, http.StatusOK, e)
}

// events answers the webhook's history, newest first: all kept, or the
// newest limit=.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 0, 1, MaxLimit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	entries, err := a.Records.History(r.Context(), h.ID, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if entries == nil {
		entries = []history.Entry{}
	}
	writeJSON(w, http.StatusOK, Events{Items: entries})
}

// deadLetters answers the webhook's dead letters, the last to die first: all
// kept, or the first limit=.
func (a *api) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 0, 1, MaxLimit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	dead, err := a.Records.DeadLetters(r.Context(), h.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if limit > 0 && len(dead) > limit {
		dead = dead[:limit]
	}
	out := DeadLetters{Items: make([]DeadLetter, len(dead))}
	for i, d := range dead {
		out.Items[i] = DeadLetter{
			ID: d.ID, EventID: d.EventID, Action: d.Action, Attempts: d.Attempts, Created: d.Created, Died: d.Died,
			Error: d.Error, Redelivery: d.Redelivery, ContentType: d.ContentType, Content: d.Payload,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// purge removes the webhook's dead letters.
func (a *api) purge(w http.ResponseWriter, r *http.Request) {
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	n, err := a.Redeliveries.PurgeDeadLetters(r.Context(), h.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Log.WithFields(logrus.Fields{"webhook": h.Name, "purged": n, "remote": r.RemoteAddr}).Info("dead letters purged")
	writeJSON(w, http.StatusOK, Purged{Purged: n})
}

// redeliver queues one delivery again, from the dead letters or the history.
func (a *api) redeliver(w http.ResponseWriter, r *http.Request) {
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["id"]
	err := a.Redeliveries.Redeliver(r.Context(), h.ID, id, a.Now().UTC())
	switch {
	case errors.Is(err, store.ErrConflict):
		err = &ErrorDetail{Code: CodeQueued, Message: fmt.Sprintf(
			"delivery %q of webhook %q is still queued or being delivered; redeliver it once it is delivered or dead", id, h.Name)}
	case errors.Is(err, store.ErrNotFound):
		err = &ErrorDetail{Code: CodeNotFound, Message: fmt.Sprintf(
			"webhook %q has no delivery %q in its dead letters or its history", h.Name, id)}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Wake(h.ID)
	a.Log.WithFields(logrus.Fields{"webhook": h.Name, "delivery": id, "remote": r.RemoteAddr}).Info("delivery queued again")
	writeJSON(w, http.StatusAccepted, Queued{Queued: 1})
}

// redeliverDead queues every dead letter of the webhook again.
func (a *api) redeliverDead(w http.ResponseWriter, r *http.Request) {
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	n, err := a.Redeliveries.RedeliverDeadLetters(r.Context(), h.ID, a.Now().UTC())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if n > 0 {
		a.Wake(h.ID)
	}
	a.Log.WithFields(logrus.Fields{"webhook": h.Name, "queued": n, "remote": r.RemoteAddr}).Info("dead letters queued again")
	writeJSON(w, http.StatusAccepted, Queued{Queued: n})
}
