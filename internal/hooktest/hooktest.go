// Package hooktest is a webhook receiver for tests: a real HTTP server on
// 127.0.0.1 that records every request and answers the way a test programs
// it (a status sequence, Retry-After, a delay, or a black hole).
//
// It knows nothing about regwebhook; it only sees HTTP requests.
package hooktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request the receiver got, recorded once its body was read
// and before it was answered.
type Request struct {
	Method string
	// Path is the request URI as sent: path and query.
	Path   string
	Header http.Header
	Body   []byte
	// Status is the status the receiver chose for this request. The client
	// may never see it: a black hole holds the answer, and a client that
	// gives up first gets nothing.
	Status   int
	Received time.Time
}

// Decode unmarshals the body as JSON into v, failing the test if it is not.
func (r Request) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("hooktest: decode body of %s %s as JSON: %v\nbody: %s", r.Method, r.Path, err, r.Body)
	}
}

// Map unmarshals the body as a JSON object, failing the test if it is not one.
func (r Request) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.Decode(t, &m)
	return m
}

// Option programs how a Receiver answers.
type Option func(*behaviour)

type behaviour struct {
	statuses   []int
	retryAfter string
	delay      time.Duration
	blackHole  bool
}

// Statuses answers the n-th request (in arrival order) with statuses[n]; the
// last status repeats forever. Statuses(503, 503, 200) fails twice, then
// succeeds; Statuses(500) always fails. The default is Statuses(200).
func Statuses(statuses ...int) Option {
	return func(b *behaviour) {
		if len(statuses) > 0 {
			b.statuses = statuses
		}
	}
}

// RetryAfter adds the header Retry-After: value to every answer that is not
// 2xx.
func RetryAfter(value string) Option {
	return func(b *behaviour) { b.retryAfter = value }
}

// Delay holds every answer for d. A client that gives up cuts the wait
// short; at the end of the test the connection is closed without an answer.
func Delay(d time.Duration) Option {
	return func(b *behaviour) { b.delay = d }
}

// BlackHole reads each request and holds the answer until Release is called,
// then answers as programmed (after Delay, if any). A client that gives up
// is dropped; at the end of the test the connection is closed without an
// answer.
func BlackHole() Option {
	return func(b *behaviour) { b.blackHole = true }
}

// Receiver is a recording webhook endpoint. Its methods are safe to call
// from any goroutine.
type Receiver struct {
	srv      *httptest.Server
	b        behaviour
	released chan struct{} // closed by Release
	release  sync.Once
	stop     chan struct{} // closed when the test ends

	mu          sync.Mutex
	requests    []Request
	changed     chan struct{} // closed and replaced on every new request
	inFlight    int
	maxInFlight int
}

// New starts a receiver that is closed when the test ends. Closing releases
// every held answer first, so no handler outlives the test.
func New(t testing.TB, opts ...Option) *Receiver {
	t.Helper()
	r := &Receiver{
		b:        behaviour{statuses: []int{http.StatusOK}},
		released: make(chan struct{}),
		stop:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	for _, o := range opts {
		o(&r.b)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		close(r.stop)
		r.srv.Close()
	})
	return r
}

// URL is the receiver's base URL, http://127.0.0.1:port. Every path is
// accepted.
func (r *Receiver) URL() string { return r.srv.URL }

// Release ends a black hole: held requests and all later ones are answered
// as programmed. Calling it again does nothing.
func (r *Receiver) Release() {
	r.release.Do(func() { close(r.released) })
}

// Requests returns a copy of every request received so far, in arrival order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Request, len(r.requests))
	copy(out, r.requests)
	return out
}

// Count is the number of requests received so far.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

// InFlight is the number of requests being handled now: arrived and not yet
// answered or abandoned.
func (r *Receiver) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// MaxInFlight is the highest InFlight seen so far.
func (r *Receiver) MaxInFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}

// WaitFor waits until at least n requests were received and returns them
// all. After timeout it fails the test, listing what did arrive.
func (r *Receiver) WaitFor(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, changed := len(r.requests), r.changed
		r.mu.Unlock()
		if got >= n {
			return r.Requests()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("hooktest: got %d requests after %v, want at least %d:\n%s", got, timeout, n, Describe(r.Requests()))
			return nil
		}
	}
}

// Describe renders requests one a line (status, method, path, body compacted
// if it is JSON and cut to 300 bytes), for failure messages.
func Describe(reqs []Request) string {
	var sb strings.Builder
	for i, q := range reqs {
		body := q.Body
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			body = compact.Bytes()
		}
		if len(body) > 300 {
			body = append(body[:300:300], "..."...)
		}
		fmt.Fprintf(&sb, "  #%d %d %s %s %s\n", i, q.Status, q.Method, q.Path, body)
	}
	if sb.Len() == 0 {
		return "  (none)\n"
	}
	return sb.String()
}

// serve records the request and answers as programmed. At the end of the
// test a held request is aborted (the connection closes without an answer):
// returning normally would send an implicit 200.
func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.enter()
	defer r.leave()

	// A body cut short is recorded as far as it was read: the test sees what
	// the receiver saw.
	body, _ := io.ReadAll(req.Body)
	status := r.record(Request{
		Method:   req.Method,
		Path:     req.URL.RequestURI(),
		Header:   req.Header.Clone(),
		Body:     body,
		Received: time.Now(),
	})

	if r.b.blackHole {
		select {
		case <-r.released:
		case <-req.Context().Done():
			return
		case <-r.stop:
			panic(http.ErrAbortHandler)
		}
	}
	if r.b.delay > 0 {
		timer := time.NewTimer(r.b.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-req.Context().Done():
			return
		case <-r.stop:
			panic(http.ErrAbortHandler)
		}
	}
	if r.b.retryAfter != "" && (status < 200 || status > 299) {
		w.Header().Set("Retry-After", r.b.retryAfter)
	}
	w.WriteHeader(status)
}

// record stores q with the status its position in the arrival order gets,
// wakes WaitFor, and returns that status.
func (r *Receiver) record(q Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	q.Status = r.b.statuses[min(len(r.requests), len(r.b.statuses)-1)]
	r.requests = append(r.requests, q)
	close(r.changed)
	r.changed = make(chan struct{})
	return q.Status
}

func (r *Receiver) enter() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
}

func (r *Receiver) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
}
