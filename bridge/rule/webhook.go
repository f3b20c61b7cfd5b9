// Package rule holds webhooks — the rules that say which registry events go
// where — and matches events against them.
package rule

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// Status says whether a webhook gets new jobs.
type Status string

// Statuses. A disabled webhook gets no new jobs, and its queued jobs are held.
const (
	Enabled  Status = "enabled"
	Disabled Status = "disabled"
)

// Format is the shape of the payload a webhook gets.
type Format string

// Payload formats.
const (
	ACR         Format = "acr"
	CloudEvents Format = "cloudevents"
	Envelope    Format = "envelope"
)

// Source says where a webhook is defined.
type Source string

// Sources. Webhooks from the config file are read-only through the API.
const (
	FromConfig Source = "config"
	FromAPI    Source = "api"
)

// Webhook is one rule: which events (actions, scope) go to which URI, how.
// Its JSON form is the API's.
type Webhook struct {
	// ID is immutable and internal: jobs and history reference it, so a webhook
	// deleted and made again under the same name inherits nothing.
	ID                 string            `json:"-" yaml:"-"`
	Name               string            `json:"name" yaml:"name"`
	URI                string            `json:"uri" yaml:"uri"`
	Headers            map[string]string `json:"headers,omitempty" yaml:"headers"`
	Actions            []event.Action    `json:"actions" yaml:"actions"`
	Status             Status            `json:"status" yaml:"status"`
	Scope              string            `json:"scope" yaml:"scope"`
	Format             Format            `json:"format" yaml:"format"`
	Secret             string            `json:"secret,omitempty" yaml:"secret"`
	InsecureSkipVerify bool              `json:"insecureSkipVerify" yaml:"insecureSkipVerify"`
	Source             Source            `json:"source" yaml:"-"`
}

// FieldError says which field of a webhook is wrong and why.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]{5,50}$`)

// Defaults fills the fields a user may leave out.
func (w *Webhook) Defaults() {
	if len(w.Actions) == 0 {
		w.Actions = []event.Action{event.Push, event.Delete}
	}
	if w.Status == "" {
		w.Status = Enabled
	}
	if w.Format == "" {
		w.Format = ACR
	}
}

// Validate checks every field and returns the first that is wrong as a
// *FieldError. Call Defaults first.
func (w *Webhook) Validate() error {
	if !nameRE.MatchString(w.Name) {
		return fieldErr("name", "%q must be 5 to 50 lowercase letters and digits", w.Name)
	}
	if err := validateURI(w.URI); err != nil {
		return err
	}
	// Sorted, so that the error is the same every time. Names that differ
	// only in case are one header: which value went out would be chance.
	canon := make(map[string]string, len(w.Headers))
	for _, k := range slices.Sorted(maps.Keys(w.Headers)) {
		if err := validateHeader(k, w.Headers[k]); err != nil {
			return err
		}
		c := http.CanonicalHeaderKey(k)
		if first, dup := canon[c]; dup {
			return fieldErr("headers", "%q and %q are the same header; give it once", first, k)
		}
		canon[c] = k
	}
	if len(w.Actions) == 0 {
		return fieldErr("actions", "must name at least one of push, delete, pull")
	}
	seen := map[event.Action]bool{}
	for _, a := range w.Actions {
		switch a {
		case event.Push, event.Delete, event.Pull:
		default:
			return fieldErr("actions", "%q is not one of push, delete, pull", a)
		}
		if seen[a] {
			return fieldErr("actions", "%q is listed twice", a)
		}
		seen[a] = true
	}
	switch w.Status {
	case Enabled, Disabled:
	default:
		return fieldErr("status", "%q is not enabled or disabled", w.Status)
	}
	if _, err := ParseScope(w.Scope); err != nil {
		return fieldErr("scope", "%v", err)
	}
	switch w.Format {
	case ACR, CloudEvents, Envelope:
	default:
		return fieldErr("format", "%q is not one of acr, cloudevents, envelope", w.Format)
	}
	if w.Secret != "" {
		if _, err := DecodeSecrets(w.Secret); err != nil {
			return fieldErr("secret", "%v", err)
		}
	}
	return nil
}

func validateURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fieldErr("uri", "%q is not a URL: %v", uri, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldErr("uri", "%q must be an absolute http or https URL", uri)
	}
	return nil
}

// reservedHeaders are set by regwebhook itself or by the HTTP client.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
}

func validateHeader(name, value string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fieldErr("headers", "%q is not a valid header name", name)
	}
	canon := http.CanonicalHeaderKey(name)
	lower := strings.ToLower(name)
	if reservedHeaders[canon] || strings.HasPrefix(lower, "x-regwebhook-") || strings.HasPrefix(lower, "webhook-") {
		return fieldErr("headers", "%q is reserved", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fieldErr("headers", "value of %q must not contain CR or LF", name)
	}
	// Go's HTTP client refuses to send these, so every delivery would fail.
	if i := strings.IndexFunc(value, isCTL); i >= 0 {
		return fieldErr("headers", "value of %q must not contain control character %q", name, value[i:i+1])
	}
	return nil
}

// isCTL reports whether r is a control character that a header value may
// not hold (RFC 9110 5.5: only tab is allowed).
func isCTL(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }

// isTokenChar reports whether r may appear in an HTTP token (RFC 9110 5.6.2).
func isTokenChar(r rune) bool {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// DecodeSecrets decodes a webhook secret: "whsec_" and the base64 of 24 to 64
// bytes, or two such separated by a space while a secret is rotated.
func DecodeSecrets(secret string) ([][]byte, error) {
	parts := strings.Fields(secret)
	if len(parts) == 0 || len(parts) > 2 {
		return nil, fmt.Errorf("must be one secret, or two separated by a space")
	}
	keys := make([][]byte, 0, len(parts))
	for _, p := range parts {
		b64, ok := strings.CutPrefix(p, "whsec_")
		if !ok {
			return nil, fmt.Errorf("must start with whsec_")
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("is not whsec_ and base64: %v", err)
		}
		if len(key) < 24 || len(key) > 64 {
			return nil, fmt.Errorf("must hold 24 to 64 bytes, has %d", len(key))
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Takes reports whether the webhook subscribes to action.
func (w *Webhook) Takes(a event.Action) bool {
	for _, x := range w.Actions {
		if x == a {
			return true
		}
	}
	return false
}
