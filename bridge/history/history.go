// Package history holds the record of a delivery attempt, in the shape
// `az acr webhook list-events` shows, and the masking that keeps secrets out
// of it.
package history

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Entry is one delivery attempt (or ping): the request sent and the response
// got. Secrets in it are already masked.
type Entry struct {
	ID         string    `json:"id"` // delivery id
	WebhookID  string    `json:"-"`
	EventID    string    `json:"eventId"`
	Action     string    `json:"action"`
	Attempt    int       `json:"attempt"`
	Timestamp  time.Time `json:"timestamp"`
	DurationMs int64     `json:"durationMs"`
	Error      string    `json:"error,omitempty"`
	Request    Request   `json:"eventRequestMessage"`
	Response   *Response `json:"eventResponseMessage,omitempty"`
}

// Request is the request an attempt sent.
type Request struct {
	Method     string            `json:"method"`
	RequestURI string            `json:"requestUri"`
	Headers    map[string]string `json:"headers"`
	Content    string            `json:"content"`
}

// Response is the answer an attempt got; nil in an Entry when none came.
type Response struct {
	StatusCode   int               `json:"statusCode"`
	ReasonPhrase string            `json:"reasonPhrase"`
	Headers      map[string]string `json:"headers"`
	Content      string            `json:"content"`
}

// MaxContent is how much of a response body history keeps.
const MaxContent = 4 << 10

// Masked is what a secret value is shown as.
const Masked = "***"

// MaskURI shows a URI as scheme://host/… : Slack-style URIs carry their
// secret in the path and query.
func MaskURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return Masked
	}
	if u.Path == "" && u.RawQuery == "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Headers flattens h into a map, a header's values joined by ", ".
func Headers(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}
