package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// Paging of the list.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

// list answers a page of webhooks sorted by name: those after the name
// after=, at most limit=.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", DefaultPage, 1, MaxPage)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	after := r.URL.Query().Get("after")
	all := a.Hooks.List()
	page := all[sort.Search(len(all), func(i int) bool { return all[i].Name > after }):]
	out := WebhookList{Items: make([]Webhook, 0, min(len(page), limit))}
	if len(page) > limit {
		page = page[:limit]
		out.Next = page[limit-1].Name
	}
	for _, h := range page {
		v, err := a.view(r.Context(), h)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out.Items = append(out.Items, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := decodeFields(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	want := f.webhook()
	h, err := a.Hooks.Create(r.Context(), want)
	if errors.Is(err, store.ErrConflict) {
		err = &ErrorDetail{Code: CodeNameTaken, Message: fmt.Sprintf("a webhook is already called %q", want.Name)}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Log.WithFields(logrus.Fields{"webhook": h.Name, "remote": r.RemoteAddr}).Info("webhook created")
	w.Header().Set("Location", Prefix+"/webhooks/"+url.PathEscape(h.Name))
	writeJSON(w, http.StatusCreated, Webhook{Webhook: masked(h)})
}

func (a *api) show(w http.ResponseWriter, r *http.Request) {
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	v, err := a.view(r.Context(), h)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// update changes the fields the body gives. The name is the webhook's key
// and cannot change: giving it is allowed only unchanged.
func (a *api) update(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	body, err := readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := decodeFields(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if f.name != nil && *f.name != name {
		a.fail(w, r, &rule.FieldError{Field: "name", Message: "cannot be changed; create a webhook under the new name and delete this one"})
		return
	}
	h, err := a.Hooks.Update(r.Context(), name, f.patch)
	if err != nil {
		a.fail(w, r, a.changeError(name, err))
		return
	}
	a.Log.WithFields(logrus.Fields{"webhook": name, "fields": f.given, "remote": r.RemoteAddr}).Info("webhook updated")
	v, err := a.view(r.Context(), h)
	if err != nil {
		// The change is made: say so, without what history would add.
		a.Log.WithError(err).WithField("webhook", name).Warn("updated webhook answered without its last delivery")
		v = Webhook{Webhook: masked(h)}
	}
	writeJSON(w, http.StatusOK, v)
}

// delete deletes a webhook with its queued jobs, dead letters and history.
func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if err := a.Hooks.Delete(r.Context(), name); err != nil {
		a.fail(w, r, a.changeError(name, err))
		return
	}
	a.Log.WithFields(logrus.Fields{"webhook": name, "remote": r.RemoteAddr}).Info("webhook deleted")
	w.WriteHeader(http.StatusNoContent)
}

// config answers the URI, headers and secret whole: the one call that does.
func (a *api) config(w http.ResponseWriter, r *http.Request) {
	h, ok := a.hook(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, Config{URI: h.URI, Headers: h.Headers, Secret: h.Secret})
}

// hook returns the webhook the path names, or answers 404.
func (a *api) hook(w http.ResponseWriter, r *http.Request) (*rule.Webhook, bool) {
	name := mux.Vars(r)["name"]
	h, err := a.Hooks.Get(name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = notFound(name)
		}
		a.fail(w, r, err)
		return nil, false
	}
	return h, true
}

func notFound(name string) error {
	return &ErrorDetail{Code: CodeNotFound, Message: fmt.Sprintf("no webhook is called %q", name)}
}

// changeError gives the errors of an update or delete their answer.
func (a *api) changeError(name string, err error) error {
	switch {
	case errors.Is(err, webhooks.ErrReadOnly):
		return &ErrorDetail{Code: CodeReadOnly, Message: fmt.Sprintf(
			"webhook %q is defined in the config file, which the API does not change: edit the file and reload it (SIGHUP)", name)}
	case errors.Is(err, store.ErrNotFound):
		return notFound(name)
	}
	return err
}

// view is h as list and show answer it: masked, with its last delivery.
func (a *api) view(ctx context.Context, h *rule.Webhook) (Webhook, error) {
	entries, err := a.Records.History(ctx, h.ID, 0)
	if err != nil {
		return Webhook{}, err
	}
	v := Webhook{Webhook: masked(h)}
	v.LastDelivery, v.FailingSince, v.LastError = summarize(entries)
	return v, nil
}

// masked returns h with its secrets out: every header value and the secret
// as "***", the URI as scheme://host/….
func masked(h *rule.Webhook) rule.Webhook {
	c := *h
	c.URI = history.MaskURI(h.URI)
	if h.Headers != nil {
		c.Headers = make(map[string]string, len(h.Headers))
		for k := range h.Headers {
			c.Headers[k] = history.Masked
		}
	}
	if c.Secret != "" {
		c.Secret = history.Masked
	}
	return c
}

// summarize reads a webhook's history, newest first, for its last delivery,
// and since when it fails and with what error. Pings do not count: they show
// whether the target answers now, not whether deliveries get through.
func summarize(entries []history.Entry) (last *LastDelivery, since *time.Time, lastError string) {
	for _, e := range entries {
		if e.Action == string(event.Ping) {
			continue
		}
		ok := succeeded(e)
		if last == nil {
			last = &LastDelivery{ID: e.ID, Time: e.Timestamp, Status: DeliveryFailed}
			if e.Response != nil {
				last.StatusCode = e.Response.StatusCode
			}
			if ok {
				last.Status = DeliverySucceeded
			} else {
				lastError = e.Error
			}
		}
		if ok {
			break
		}
		t := e.Timestamp
		since = &t
	}
	return last, since, lastError
}

// succeeded reports whether an attempt was answered with a 2xx.
func succeeded(e history.Entry) bool {
	return e.Error == "" && e.Response != nil && e.Response.StatusCode >= 200 && e.Response.StatusCode <= 299
}
