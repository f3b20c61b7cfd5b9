package deliver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestClassify is the documentation of what an attempt's result means.
func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "http://h/x", Err: err} }

	tests := []struct {
		name   string
		status int
		header http.Header
		err    error
		want   Outcome
	}{
		{name: "200 is success", status: 200, want: Outcome{Kind: Success, Reason: ReasonOK}},
		{name: "202 is success", status: 202, want: Outcome{Kind: Success, Reason: ReasonOK}},
		{name: "204 is success", status: 204, want: Outcome{Kind: Success, Reason: ReasonOK}},
		{name: "301 is a failure: redirects are not followed", status: 301, want: Outcome{Kind: Retry, Reason: ReasonRedirect}},
		{name: "302 is a failure", status: 302, want: Outcome{Kind: Retry, Reason: ReasonRedirect}},
		{name: "304 is a failure", status: 304, want: Outcome{Kind: Retry, Reason: ReasonRedirect}},
		{name: "400 is retried", status: 400, want: Outcome{Kind: Retry, Reason: ReasonStatus4xx}},
		{name: "401 is retried", status: 401, want: Outcome{Kind: Retry, Reason: ReasonStatus4xx}},
		{name: "404 is retried", status: 404, want: Outcome{Kind: Retry, Reason: ReasonStatus4xx}},
		{name: "410 is retried", status: 410, want: Outcome{Kind: Retry, Reason: ReasonStatus4xx}},
		{name: "429 without Retry-After is retried", status: 429, want: Outcome{Kind: Retry, Reason: ReasonStatus4xx}},
		{name: "500 is retried", status: 500, want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "502 is retried", status: 502, want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "503 without Retry-After is retried", status: 503, want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "a status out of range is retried", status: 999, want: Outcome{Kind: Retry, Reason: ReasonStatusOther}},
		{name: "1xx as a final status is retried", status: 199, want: Outcome{Kind: Retry, Reason: ReasonStatusOther}},

		{name: "503 Retry-After seconds pauses", status: 503, header: retryAfter("120"),
			want: Outcome{Kind: Pause, Reason: ReasonRetryAfter, Until: now.Add(2 * time.Minute)}},
		{name: "429 Retry-After seconds pauses", status: 429, header: retryAfter("1"),
			want: Outcome{Kind: Pause, Reason: ReasonRetryAfter, Until: now.Add(time.Second)}},
		{name: "503 Retry-After HTTP-date pauses until then", status: 503, header: retryAfter("Thu, 26 Nov 2026 10:05:00 GMT"),
			want: Outcome{Kind: Pause, Reason: ReasonRetryAfter, Until: now.Add(5 * time.Minute)}},
		{name: "Retry-After in the past is a plain retry", status: 503, header: retryAfter("Thu, 26 Nov 2026 09:00:00 GMT"),
			want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "Retry-After 0 is a plain retry", status: 429, header: retryAfter("0"),
			want: Outcome{Kind: Retry, Reason: ReasonStatus4xx}},
		{name: "malformed Retry-After is a plain retry", status: 503, header: retryAfter("soon"),
			want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "negative Retry-After is a plain retry", status: 503, header: retryAfter("-5"),
			want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "huge Retry-After does not overflow", status: 503, header: retryAfter("99999999999999999"),
			want: Outcome{Kind: Pause, Reason: ReasonRetryAfter, Until: now.Add(maxRetryAfter * time.Second)}},
		{name: "Retry-After on a 500 is ignored", status: 500, header: retryAfter("60"),
			want: Outcome{Kind: Retry, Reason: ReasonStatus5xx}},
		{name: "Retry-After on a 200 is ignored", status: 200, header: retryAfter("60"),
			want: Outcome{Kind: Success, Reason: ReasonOK}},

		{name: "time-out is retried", err: wrap(context.DeadlineExceeded), want: Outcome{Kind: Retry, Reason: ReasonTimeout}},
		{name: "net time-out is retried", err: wrap(&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}),
			want: Outcome{Kind: Retry, Reason: ReasonTimeout}},
		{name: "connection refused is retried", err: wrap(&net.OpError{Op: "dial", Err: errors.New("connection refused")}),
			want: Outcome{Kind: Retry, Reason: ReasonNetwork}},
		{name: "DNS failure is retried", err: wrap(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid"}}),
			want: Outcome{Kind: Retry, Reason: ReasonDNS}},
		{name: "unknown certificate authority is retried", err: wrap(x509.UnknownAuthorityError{}),
			want: Outcome{Kind: Retry, Reason: ReasonTLS}},
		{name: "certificate for another host is retried", err: wrap(x509.HostnameError{Host: "h"}),
			want: Outcome{Kind: Retry, Reason: ReasonTLS}},
		{name: "cancelled (shutting down) is retried", err: wrap(context.Canceled), want: Outcome{Kind: Retry, Reason: ReasonCanceled}},
		{name: "a request that cannot be built is given up", err: fmt.Errorf("%w: bad", ErrInvalidRequest),
			want: Outcome{Kind: GiveUp, Reason: ReasonInvalidRequest}},
		{name: "a denied network is given up", err: wrap(&net.OpError{Op: "dial", Err: fmt.Errorf("x: %w", ErrDeniedNetwork)}),
			want: Outcome{Kind: GiveUp, Reason: ReasonDenied}},
		{name: "an error wins over the status", status: 200, err: wrap(errors.New("reset")),
			want: Outcome{Kind: Retry, Reason: ReasonNetwork}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.status, tt.header, tt.err, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%d, %v, %v) (-want +got):\n%s", tt.status, tt.header, tt.err, diff)
			}
		})
	}
}
