// Package deliver sends jobs to webhooks: a Sender makes one signed request
// and classifies its outcome, and a Dispatcher leases due jobs from the queue
// and shares a fixed number of workers fairly across webhooks, so that dead
// or slow service URIs cannot hold the workers the healthy ones need.
package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Kind is what to do after an attempt.
type Kind int

// Kinds of outcome.
const (
	// Success: the webhook took the delivery (2xx); the job is done.
	Success Kind = iota + 1
	// Retry: the attempt failed; try again after a backoff.
	Retry
	// Pause: the webhook asked to be left alone (429 or 503 with a valid
	// Retry-After); the whole webhook waits until Outcome.Until.
	Pause
	// GiveUp: no retry can fix it (the request cannot be built, or it goes to a
	// denied network); the job goes to dead letters at once.
	GiveUp
)

func (k Kind) String() string {
	switch k {
	case Success:
		return "success"
	case Retry:
		return "retry"
	case Pause:
		return "pause"
	case GiveUp:
		return "give-up"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Reasons label outcomes in metrics and logs. The set is closed: a label
// never carries a value from the network.
const (
	ReasonOK             = "ok"
	ReasonRedirect       = "status_3xx" // redirects are not followed
	ReasonStatus4xx      = "status_4xx"
	ReasonStatus5xx      = "status_5xx"
	ReasonStatusOther    = "status_other"
	ReasonRetryAfter     = "retry_after" // 429 or 503 with a valid Retry-After
	ReasonTimeout        = "timeout"
	ReasonTLS            = "tls"
	ReasonDNS            = "dns"
	ReasonNetwork        = "network"
	ReasonCanceled       = "canceled" // the process is shutting down
	ReasonInvalidRequest = "invalid_request"
	ReasonDenied         = "denied_network"
)

// Errors Classify gives up on; the Sender wraps its errors in them.
var (
	// ErrInvalidRequest: the request cannot be built from the webhook and job
	// (a URI or secret that does not parse).
	ErrInvalidRequest = errors.New("request cannot be built")
	// ErrDeniedNetwork: the URI resolves to an address in delivery.denynetworks.
	ErrDeniedNetwork = errors.New("address is in a denied network")
)

// Outcome is the classified result of one attempt.
type Outcome struct {
	Kind   Kind
	Reason string    // one of the Reason constants
	Until  time.Time // for Pause: when the webhook may be tried again
}

// maxRetryAfter bounds a Retry-After in seconds so that the arithmetic cannot
// overflow; the Dispatcher caps the pause at retry.max anyway.
const maxRetryAfter = 100 * 365 * 24 * 60 * 60

// Classify decides what an attempt's result means: status and header are the
// response's, err the error of the request (then status is ignored), now the
// time the response came. 2xx is success; 3xx (redirects are not followed)
// and every other status fail and are retried, 429 and 503 with a valid
// Retry-After in the future pause the whole webhook; time-outs, network and
// TLS errors are retried; a request that cannot be built, or that goes to a
// denied network, is given up.
func Classify(status int, header http.Header, err error, now time.Time) Outcome {
	if err != nil {
		return classifyErr(err)
	}
	switch {
	case status >= 200 && status <= 299:
		return Outcome{Kind: Success, Reason: ReasonOK}
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		if until, ok := retryAfter(header.Get("Retry-After"), now); ok {
			return Outcome{Kind: Pause, Reason: ReasonRetryAfter, Until: until}
		}
	}
	switch {
	case status >= 300 && status <= 399:
		return Outcome{Kind: Retry, Reason: ReasonRedirect}
	case status >= 400 && status <= 499:
		return Outcome{Kind: Retry, Reason: ReasonStatus4xx}
	case status >= 500 && status <= 599:
		return Outcome{Kind: Retry, Reason: ReasonStatus5xx}
	}
	return Outcome{Kind: Retry, Reason: ReasonStatusOther}
}

func classifyErr(err error) Outcome {
	var (
		netErr   net.Error
		dnsErr   *net.DNSError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrInvalidRequest):
		return Outcome{Kind: GiveUp, Reason: ReasonInvalidRequest}
	case errors.Is(err, ErrDeniedNetwork):
		return Outcome{Kind: GiveUp, Reason: ReasonDenied}
	case errors.Is(err, context.Canceled):
		return Outcome{Kind: Retry, Reason: ReasonCanceled}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return Outcome{Kind: Retry, Reason: ReasonTimeout}
	case errors.As(err, &dnsErr):
		return Outcome{Kind: Retry, Reason: ReasonDNS}
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &hostname),
		errors.As(err, &record), errors.As(err, &alert), errors.As(err, &verify):
		return Outcome{Kind: Retry, Reason: ReasonTLS}
	}
	return Outcome{Kind: Retry, Reason: ReasonNetwork}
}

// retryAfter parses a Retry-After value, delta-seconds or HTTP-date, into the
// time it names. It reports false for a missing or malformed value and for
// one not after now (which asks for nothing more than a plain retry).
func retryAfter(v string, now time.Time) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs == 0 {
			return time.Time{}, false
		}
		secs = min(secs, maxRetryAfter)
		return now.Add(time.Duration(secs) * time.Second), true
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return time.Time{}, false
	}
	return t, true
}
