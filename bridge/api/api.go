// Package api is the admin HTTP API under /api/v1: webhooks made, changed and
// deleted, their history, pings, dead letters and redeliveries (SPEC §5).
// docs/api.md describes every call.
//
// Secrets stay out of everything the API answers and logs: custom header
// values and the secret are "***" and a service URI is scheme://host/… in
// every answer but get-config's, and never in a log line.
package api

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 64 << 10

// Hooks keeps the webhooks; *webhooks.Manager is one. Its errors are
// store.ErrNotFound, store.ErrConflict (a name taken), webhooks.ErrReadOnly
// and *rule.FieldError.
type Hooks interface {
	List() []*rule.Webhook
	Get(name string) (*rule.Webhook, error)
	Create(ctx context.Context, w *rule.Webhook) (*rule.Webhook, error)
	Update(ctx context.Context, name string, p webhooks.Patch) (*rule.Webhook, error)
	Delete(ctx context.Context, name string) error
}

var _ Hooks = (*webhooks.Manager)(nil)

// Pinger sends a ping; *deliver.Sender is one. The entry it returns is what
// to record whatever the target answered; its error is for a ping that could
// not be made at all.
type Pinger interface {
	Ping(ctx context.Context, hook *rule.Webhook) (history.Entry, error)
}

// Params configures the API.
type Params struct {
	Hooks Hooks
	// Records reads history and dead letters, and records pings.
	Records store.Records
	// Redeliveries purges and redelivers.
	Redeliveries store.Redeliveries
	Pinger       Pinger
	// Token is admin.token. When set, every call needs "Authorization:
	// Bearer <Token>"; when empty, only loopback clients that address the
	// API as localhost, 127.0.0.1 or [::1] are answered.
	Token string
	// Wake is told the webhook whose deliveries were queued again; may be nil.
	Wake func(webhookIDs ...string)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log; default discards.
	Log logrus.FieldLogger
}

// api serves the calls; its handlers are its methods.
type api struct {
	Params
}

// New returns the API's handler. It serves paths under Prefix; mount it
// there (a router's PathPrefix(Prefix)), without stripping the prefix.
func New(p Params) http.Handler {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Wake == nil {
		p.Wake = func(...string) {}
	}
	if p.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		p.Log = l
	}
	a := &api{Params: p}

	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, &ErrorDetail{Code: CodeNotFound, Message: "no such call: " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, &ErrorDetail{Code: CodeMethodNotAllowed, Message: r.Method + " is not a method of " + r.URL.Path})
	})
	for _, rt := range []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{http.MethodGet, "/webhooks", a.list},
		{http.MethodPost, "/webhooks", a.create},
		{http.MethodGet, "/webhooks/{name}", a.show},
		{http.MethodPatch, "/webhooks/{name}", a.update},
		{http.MethodDelete, "/webhooks/{name}", a.delete},
		{http.MethodGet, "/webhooks/{name}/config", a.config},
		{http.MethodPost, "/webhooks/{name}/ping", a.ping},
		{http.MethodGet, "/webhooks/{name}/events", a.events},
		{http.MethodGet, "/webhooks/{name}/deadletters", a.deadLetters},
		{http.MethodDelete, "/webhooks/{name}/deadletters", a.purge},
		{http.MethodPost, "/webhooks/{name}/deadletters/redeliver", a.redeliverDead},
		{http.MethodPost, "/webhooks/{name}/deliveries/{id}/redeliver", a.redeliver},
	} {
		r.HandleFunc(Prefix+rt.path, rt.h).Methods(rt.method)
	}
	return a.guard(r)
}
