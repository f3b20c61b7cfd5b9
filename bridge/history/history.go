// Package history holds the record of a delivery attempt, in the shape
// `az acr webhook list-events` shows, and the masking that keeps secrets out
// of it.
package history

import (
	"net/http"
	"net/url"
	"slices"
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
	Method     string  `json:"method"`
	RequestURI string  `json:"requestUri"`
	Headers    Headers `json:"headers"`
	Content    string  `json:"content"`
}

// Response is the answer an attempt got; nil in an Entry when none came.
type Response struct {
	StatusCode   int     `json:"statusCode"`
	ReasonPhrase string  `json:"reasonPhrase"`
	Headers      Headers `json:"headers"`
	Content      string  `json:"content"`
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

// Header is one header of a recorded message, its values joined by ", ".
type Header struct{ Name, Value string }

// Headers are a recorded message's headers, sorted by name, each name once.
// Their JSON is an object, null when nil: what encoding/json writes of a
// map[string]string. A slice rather than a map: every delivery records the
// headers of its request and of its answer, and two maps a delivery were a
// visible part of regwebhook's CPU time under load.
type Headers []Header

// HeadersOf records h, a header's values joined by ", ".
func HeadersOf(h http.Header) Headers {
	out := make(Headers, 0, len(h))
	for k, v := range h {
		out = append(out, Header{k, strings.Join(v, ", ")})
	}
	out.Sort()
	return out
}

// MakeHeaders returns the headers of m, sorted.
func MakeHeaders(m map[string]string) Headers {
	out := make(Headers, 0, len(m))
	for k, v := range m {
		out = append(out, Header{k, v})
	}
	out.Sort()
	return out
}

// Sort sorts h by name.
func (h Headers) Sort() {
	slices.SortFunc(h, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
}

// Get returns the value of the header named exactly name, "" when there
// is none.
func (h Headers) Get(name string) string {
	v, _ := h.Lookup(name)
	return v
}

// Lookup returns the value of the header named exactly name, and whether
// there is one.
func (h Headers) Lookup(name string) (string, bool) {
	for _, x := range h {
		if x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}
