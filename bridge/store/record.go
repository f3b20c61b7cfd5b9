package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// What every store decides and keeps the same way lives here, once.

// Exhausted reports whether a job that has had attempts attempts and was made
// at created is dead after this failure: it has had f.MaxAttempts attempts, or
// is older than f.MaxAge at f.Now. A zero MaxAttempts or MaxAge is no limit.
func (f *Failure) Exhausted(attempts int, created time.Time) bool {
	if f.MaxAttempts > 0 && attempts >= f.MaxAttempts {
		return true
	}
	return f.MaxAge > 0 && f.Now.Sub(created) > f.MaxAge
}

// ExpiredError is the error of a dead letter that Maintain made of a queued
// job older than maxAge (one held while its webhook was disabled, or retried
// too long).
func ExpiredError(maxAge time.Duration) string {
	return fmt.Sprintf("not delivered within maxage %s", maxAge)
}

// webhookRecord is the form in which stores keep a webhook, independent of its
// API JSON form (which may hide or rename fields). The ID is kept beside it.
type webhookRecord struct {
	Name               string            `json:"name"`
	URI                string            `json:"uri"`
	Headers            map[string]string `json:"headers,omitempty"`
	Actions            []event.Action    `json:"actions,omitempty"`
	Status             rule.Status       `json:"status"`
	Scope              string            `json:"scope,omitempty"`
	Format             rule.Format       `json:"format"`
	Secret             string            `json:"secret,omitempty"`
	InsecureSkipVerify bool              `json:"insecureSkipVerify,omitempty"`
	Source             rule.Source       `json:"source"`
}

// EncodeWebhook returns every field of w but its ID, as stores keep it.
func EncodeWebhook(w *rule.Webhook) ([]byte, error) {
	b, err := json.Marshal(webhookRecord{
		Name: w.Name, URI: w.URI, Headers: w.Headers, Actions: w.Actions, Status: w.Status,
		Scope: w.Scope, Format: w.Format, Secret: w.Secret, InsecureSkipVerify: w.InsecureSkipVerify,
		Source: w.Source,
	})
	if err != nil {
		return nil, fmt.Errorf("encode webhook %q: %w", w.Name, err)
	}
	return b, nil
}

// DecodeWebhook is the inverse of EncodeWebhook, for the webhook with id.
func DecodeWebhook(id string, b []byte) (*rule.Webhook, error) {
	var r webhookRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode webhook %q: %w", id, err)
	}
	return &rule.Webhook{
		ID: id, Name: r.Name, URI: r.URI, Headers: r.Headers, Actions: r.Actions, Status: r.Status,
		Scope: r.Scope, Format: r.Format, Secret: r.Secret, InsecureSkipVerify: r.InsecureSkipVerify,
		Source: r.Source,
	}, nil
}
