package deliver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/payload"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Headers regwebhook sets on every request. Custom headers cannot use these
// names (rule.Webhook.Validate reserves the X-Regwebhook- and webhook-
// prefixes).
const (
	HeaderDelivery   = "X-Regwebhook-Delivery"
	HeaderEvent      = "X-Regwebhook-Event"
	HeaderWebhook    = "X-Regwebhook-Webhook"
	HeaderRedelivery = "X-Regwebhook-Redelivery"
	// Standard Webhooks signing, sent when the webhook has a secret.
	HeaderSignatureID        = "Webhook-Id"
	HeaderSignatureTimestamp = "Webhook-Timestamp"
	HeaderSignature          = "Webhook-Signature"
)

// DefaultTimeout is delivery.timeout's default.
const DefaultTimeout = 10 * time.Second

// drainLimit is how much of a response past history.MaxContent is read and
// thrown away so that the connection can be reused; a longer body closes it.
const drainLimit = 64 << 10

// SenderParams configures a Sender. Zero values take the defaults named.
type SenderParams struct {
	// Version goes into User-Agent: regwebhook/<Version>.
	Version string
	// Timeout bounds one request, from dialing to reading the response;
	// default DefaultTimeout.
	Timeout time.Duration
	// TLS is the client TLS configuration for every webhook, cloned: set its
	// RootCAs to add delivery.tls.cafile (see CertPool). nil: Go's defaults,
	// which verify against the system's roots.
	TLS *tls.Config
	// DenyNetworks are address ranges no request may connect to (cloud
	// metadata endpoints): such a request is given up. It is checked on the
	// address dialed, after DNS, so a name cannot sneak past it. Through a
	// proxy it is checked on the proxy's address when dialing it, and on the
	// webhook's host before the request is handed to the proxy (see
	// denyProxied): the proxy resolves names itself.
	DenyNetworks []netip.Prefix
	// Proxy picks the HTTP proxy of a request, as http.Transport.Proxy does;
	// nil: http.ProxyFromEnvironment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY;
	// never for loopback targets).
	Proxy func(*http.Request) (*url.URL, error)
	// IdleConnsPerHost is how many connections to one host are kept open
	// for the next requests; at least 16. Set it to delivery.workers: every
	// worker may be delivering to one host (several webhooks of one
	// service), and a connection not kept is closed after its request and
	// dialed again for the next.
	IdleConnsPerHost int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// NewID makes the id of a ping; default a random UUID.
	NewID func() string
}

// Sender makes one request to a webhook and reports what happened. It keeps
// two connection pools: one that verifies TLS, and one for the webhooks that
// set insecureSkipVerify. It is safe for concurrent use.
type Sender struct {
	userAgent string
	timeout   time.Duration
	now       func() time.Time
	newID     func() string
	// Requests go to the transports themselves, not through an
	// http.Client: a Client copies every request's headers and URL for
	// redirects, which are never followed here (see roundTrip).
	verified *http.Transport
	insecure *http.Transport
	// bodies are the buffers answers are read into (see readBody).
	bodies sync.Pool
	// targets holds the parsed and the masked form of the URIs requests
	// went to (see target): a webhook's URI seldom changes. Emptied when it
	// holds maxTargets.
	targets  sync.Map
	ntargets atomic.Int32
}

// maxTargets bounds Sender.targets: many more URIs than webhooks come only
// from URIs changed again and again.
const maxTargets = 4096

// A target is a webhook URI as a request and its history entry need it.
type target struct {
	url    *url.URL // shared by the requests to it, which only read it
	masked string   // history.MaskURI's
	err    error    // why it is no URI a request can go to
}

// target returns uri's target, from s.targets when it is there: a URI
// parsed for each request, and again to mask it for the history entry,
// was two parses and their allocations a delivery.
func (s *Sender) target(uri string) *target {
	if t, ok := s.targets.Load(uri); ok {
		return t.(*target)
	}
	t := &target{masked: history.MaskURI(uri)}
	if u, err := url.Parse(uri); err != nil {
		// url.Error quotes the whole URI, which may carry a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		t.err = err
	} else {
		// As http.NewRequest leaves it: without an empty port.
		if strings.LastIndexByte(u.Host, ':') > strings.LastIndexByte(u.Host, ']') {
			u.Host = strings.TrimSuffix(u.Host, ":")
		}
		t.url = u
	}
	if s.ntargets.Add(1) > maxTargets {
		s.targets.Clear()
		s.ntargets.Store(1)
	}
	s.targets.Store(uri, t)
	return t
}

// NewSender returns a Sender.
func NewSender(p SenderParams) *Sender {
	s := &Sender{
		userAgent: "regwebhook/" + p.Version,
		timeout:   p.Timeout,
		now:       p.Now,
		newID:     p.NewID,
		bodies:    sync.Pool{New: func() any { return new([history.MaxContent]byte) }},
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = uuid.NewString
	}
	proxy := p.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	s.verified = keepIdle(newTransport(p.TLS, false, p.DenyNetworks, proxy), p.IdleConnsPerHost)
	s.insecure = keepIdle(newTransport(p.TLS, true, p.DenyNetworks, proxy), p.IdleConnsPerHost)
	return s
}

// keepIdle keeps up to perHost idle connections to each host (never fewer
// than the transport's own setting), and enough in all for them.
func keepIdle(t *http.Transport, perHost int) *http.Transport {
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, perHost)
	t.MaxIdleConns = max(t.MaxIdleConns, t.MaxIdleConnsPerHost)
	return t
}

// CloseIdleConnections closes the connections kept for reuse.
func (s *Sender) CloseIdleConnections() {
	s.verified.CloseIdleConnections()
	s.insecure.CloseIdleConnections()
}

// attempt is what one request carries.
type attempt struct {
	id, eventID, action string
	number              int
	body                string
	contentType         string
	redelivery          bool
}

// requestsShare: the requests of a requestContexts share a context for a
// requestsShare-th of the timeout, and may run as much longer than it; so
// some requestsShare contexts are alive at a time, whatever the rate.
const requestsShare = 20

// requestContexts returns the contexts for requests under parent that
// Send takes as their bound, a context and its timer shared by the
// requests of a twentieth of the timeout rather than one each: each ends
// the timeout after it was asked for, or up to a twentieth later. When
// late, how much later a request may end, is less than that, each
// request has a context of its own, made and cancelled by Send.
func (s *Sender) requestContexts(parent context.Context, late time.Duration) *deadlines {
	every := s.timeout / requestsShare
	if late < every {
		every = 0
	}
	return &deadlines{parent: parent, within: s.timeout, every: every}
}

// Send delivers a leased job to hook: one POST of the job's payload as
// stored. It returns the history entry of the attempt, with secrets masked,
// and its classified outcome. Send never retries; a cancelled ctx ends the
// request with an outcome of reason ReasonCanceled. The request ends after
// the sender's timeout, or with ctx when it ends by then or a twentieth
// later (see requestContexts).
func (s *Sender) Send(ctx context.Context, hook *rule.Webhook, job store.Job) (history.Entry, Outcome) {
	return s.send(ctx, hook, attempt{
		id:          job.ID,
		eventID:     job.EventID,
		action:      job.Action,
		number:      job.Attempts,
		body:        job.Payload,
		contentType: job.ContentType,
		redelivery:  job.Redelivery,
	})
}

// Ping sends a ping to hook now, in its format, with its headers and
// signing, whether the webhook is enabled or not, and never retries it. It
// returns the entry to record whatever the target answered; the error is
// only for a ping that could not be made.
func (s *Sender) Ping(ctx context.Context, hook *rule.Webhook) (history.Entry, error) {
	id := s.newID()
	body, contentType, err := payload.Ping(hook.Format, id, s.now())
	if err != nil {
		return history.Entry{}, fmt.Errorf("render ping for webhook %q: %w", hook.Name, err)
	}
	e, _ := s.send(ctx, hook, attempt{
		id:          id,
		eventID:     id,
		action:      string(event.Ping),
		number:      1,
		body:        string(body),
		contentType: contentType,
	})
	return e, nil
}

func (s *Sender) send(ctx context.Context, hook *rule.Webhook, a attempt) (history.Entry, Outcome) {
	start := s.now()
	to := s.target(hook.URI)
	e := history.Entry{
		ID:        a.id,
		WebhookID: hook.ID,
		EventID:   a.eventID,
		Action:    a.action,
		Attempt:   a.number,
		Timestamp: start,
		Request: history.Request{
			Method:     http.MethodPost,
			RequestURI: to.masked,
			Content:    a.body,
		},
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > s.timeout+s.timeout/requestsShare {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	req, recorded, err := s.newRequest(ctx, hook, to, a, start)
	e.Request.Headers = recorded
	if err != nil {
		e.Error = err.Error()
		return e, Classify(0, nil, err, start)
	}
	t := s.verified
	if hook.InsecureSkipVerify {
		t = s.insecure
	}
	resp, err := roundTrip(t, req)
	if err != nil {
		end := s.now()
		e.DurationMs = end.Sub(start).Milliseconds()
		out := Classify(0, nil, err, end)
		e.Error = s.describe(err, out, hook.URI)
		return e, out
	}
	content := s.readBody(resp.Body)
	end := s.now()
	e.DurationMs = end.Sub(start).Milliseconds()
	e.Response = &history.Response{
		StatusCode:   resp.StatusCode,
		ReasonPhrase: reasonPhrase(resp),
		Headers:      history.HeadersOf(resp.Header),
		Content:      content,
	}
	out := Classify(resp.StatusCode, resp.Header, nil, end)
	if out.Kind != Success {
		e.Error = "answered " + resp.Status
	}
	return e, out
}

// roundTrip sends req as http.Client.Do would, but for redirects, which
// are answers here: following one would turn the POST into a GET, and lead
// signed payloads where the webhook's owner did not send them. As Do, it
// sends a URI's user and password as basic authentication (not recorded in
// history) unless a header sets Authorization, and wraps errors in a
// url.Error.
func roundTrip(t *http.Transport, req *http.Request) (*http.Response, error) {
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		password, _ := u.Password()
		req.SetBasicAuth(u.Username(), password)
	}
	resp, err := t.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	if tlsErr, ok := err.(tls.RecordHeaderError); ok && string(tlsErr.RecordHeader[:]) == "HTTP/" {
		err = http.ErrSchemeMismatch
	}
	return nil, &url.Error{Op: "Post", URL: req.URL.Redacted(), Err: err}
}

// newRequest builds the request, and its headers as the history entry
// records them: the webhook's custom headers and the signature masked
// (history.Masked). On an error wrapping ErrInvalidRequest the headers set
// so far are returned, to be recorded.
func (s *Sender) newRequest(ctx context.Context, hook *rule.Webhook, to *target, a attempt, now time.Time) (*http.Request, history.Headers, error) {
	if to.err != nil {
		return nil, nil, fmt.Errorf("%w: uri %s: %v", ErrInvalidRequest, to.masked, to.err)
	}
	// The headers take one map, made for as many as there are, and one
	// array for their values: Header.Set makes a slice for each value, and
	// the map grew on the way. Keys are canonical already, as Set would
	// make them.
	n := 5 + len(hook.Headers)
	if a.redelivery {
		n++
	}
	if hook.Secret != "" {
		n += 3
	}
	h := make(http.Header, n)
	values := make([]string, 0, n)
	// The entry's headers are made with the request's: flattened from them
	// afterwards, they took a walk over the request's map, and a map of
	// the secret ones. Only the first `replaceable` may be set again.
	recorded := make(history.Headers, 0, n)
	replaceable := 0
	set := func(k, v string, secret bool) {
		values = append(values, v)
		h[k] = values[len(values)-1 : len(values) : len(values)]
		if secret {
			v = history.Masked
		}
		for i := range recorded[:replaceable] {
			if recorded[i].Name == k {
				recorded[i].Value = v
				return
			}
		}
		recorded = append(recorded, history.Header{Name: k, Value: v})
	}
	// What http.NewRequestWithContext makes of a POST of a.body to to.url.
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           to.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          newBody(a.body),
		GetBody:       func() (io.ReadCloser, error) { return newBody(a.body), nil },
		ContentLength: int64(len(a.body)),
		Host:          to.url.Host,
	}).WithContext(ctx)
	contentType := a.contentType
	if contentType == "" {
		contentType = payload.JSON
	}
	set("Content-Type", contentType, false)
	set("User-Agent", s.userAgent, false)
	// Custom headers come after Content-Type and User-Agent so a webhook can
	// replace those; the other names regwebhook sets are reserved, and
	// custom names differ from each other (rule.Webhook.Validate).
	replaceable = len(recorded)
	for k, v := range hook.Headers {
		set(http.CanonicalHeaderKey(k), v, true)
	}
	set(HeaderDelivery, a.id, false)
	set(HeaderEvent, a.action, false)
	set(HeaderWebhook, hook.Name, false)
	if a.redelivery {
		set(HeaderRedelivery, "true", false)
	}
	if hook.Secret != "" {
		keys, err := rule.DecodeSecrets(hook.Secret)
		if err != nil {
			recorded.Sort()
			return nil, recorded, fmt.Errorf("%w: secret of webhook %q: %v", ErrInvalidRequest, hook.Name, err)
		}
		ts := strconv.FormatInt(now.Unix(), 10)
		set(HeaderSignatureID, a.id, false)
		set(HeaderSignatureTimestamp, ts, false)
		set(HeaderSignature, Sign(keys, a.id, ts, []byte(a.body)), true)
	}
	recorded.Sort()
	return req, recorded, nil
}

// newBody returns a request's body reading s, or http.NoBody for none, as
// http.NewRequest does. It is a NopCloser of a strings.Reader, which
// net/http knows to be in memory: it then writes the body with the
// headers, where a reader of its own takes a write of each.
func newBody(s string) io.ReadCloser {
	if s == "" {
		return http.NoBody
	}
	return io.NopCloser(strings.NewReader(s))
}

// Sign returns the Standard Webhooks signature header value of body: for each
// key, "v1," and the base64 of HMAC-SHA256(key, id.timestamp.body),
// separated by spaces.
func Sign(keys [][]byte, id, timestamp string, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(timestamp))
		m.Write([]byte{'.'})
		m.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return strings.Join(sigs, " ")
}

// describe says why a request failed, with the URI masked: Go's errors
// quote the whole URL, and a Slack-style URL carries its secret.
func (s *Sender) describe(err error, out Outcome, uri string) string {
	if out.Reason == ReasonTimeout {
		return fmt.Sprintf("no answer from %s within %s", history.MaskURI(uri), s.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s %s: %v", ue.Op, history.MaskURI(uri), ue.Err)
	}
	return err.Error()
}

// readBody returns the first history.MaxContent bytes of a response, drains
// a bounded amount more so the connection can be reused, and closes it. It
// reads into a buffer it reuses: most answers are short or empty, and a
// buffer each had cost more than the answer (io.ReadAll starts at 512
// bytes).
func (s *Sender) readBody(body io.ReadCloser) string {
	defer body.Close()
	buf := s.bodies.Get().(*[history.MaxContent]byte)
	defer s.bodies.Put(buf)
	n, err := io.ReadFull(body, buf[:])
	if err == nil { // the buffer is full: more may follow (a shorter answer has been read to its end)
		_, _ = io.CopyN(io.Discard, body, drainLimit)
	}
	return string(buf[:n])
}

// reasonPhrase is the phrase the server sent after the status code, or the
// standard one. The code is compared digit by digit: formatted and joined
// to a space, it took two allocations a delivery.
func reasonPhrase(resp *http.Response) string {
	s, c := resp.Status, resp.StatusCode
	if len(s) > 4 && s[3] == ' ' && c >= 100 && c <= 999 &&
		s[0] == byte('0'+c/100) && s[1] == byte('0'+c/10%10) && s[2] == byte('0'+c%10) {
		return s[4:]
	}
	return http.StatusText(c)
}
