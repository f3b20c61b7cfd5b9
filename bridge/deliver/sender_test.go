package deliver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// Two webhook secrets, as during a rotation.
const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes
	secretB = "whsec_c2Vjb25kIHNlY3JldCBvZiBhdCBsZWFzdCAyNCBieXRlcw=="
)

var fixedNow = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// captured is one request a test server got.
type captured struct {
	header http.Header
	body   []byte
	method string
	path   string
}

// capture serves answer and records the requests.
type capture struct {
	mu   sync.Mutex
	reqs []captured
}

func (c *capture) handler(answer http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		c.mu.Lock()
		c.reqs = append(c.reqs, captured{header: r.Header.Clone(), body: body, method: r.Method, path: r.URL.Path})
		c.mu.Unlock()
		answer(w, r)
	})
}

func (c *capture) got() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.reqs...)
}

func newCapture(t *testing.T, answer http.HandlerFunc) (*capture, *httptest.Server) {
	t.Helper()
	c := &capture{}
	srv := httptest.NewServer(c.handler(answer))
	t.Cleanup(srv.Close)
	return c, srv
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "thanks") }

func newTestSender(p SenderParams) *Sender {
	if p.Version == "" {
		p.Version = "1.2.3"
	}
	if p.Now == nil {
		p.Now = func() time.Time { return fixedNow }
	}
	s := NewSender(p)
	return s
}

// verify checks a Standard Webhooks signature as a receiver would, written
// apart from Sign: every "v1," signature in the header is compared with the
// HMAC of id.timestamp.body under key.
func verify(t *testing.T, h http.Header, body []byte, secret string) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("decode %s: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Split(h.Get("webhook-signature"), " ") {
		v, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func testJob() store.Job {
	return store.Job{
		ID:          "delivery-1",
		WebhookID:   "wh-1",
		EventID:     "event-1",
		Action:      "push",
		Payload:     `{"id":"event-1",  "action":"push", "z":1, "a":2}`, // not canonical JSON: sent as is
		ContentType: "application/json",
		Attempts:    2,
		Redelivery:  true,
	}
}

func TestSendRequest(t *testing.T) {
	c, srv := newCapture(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	hook := &rule.Webhook{
		ID: "wh-1", Name: "myhook01", URI: srv.URL + "/hooks/T000/B000/XXXXsecretpath?token=abc",
		Headers: map[string]string{"Authorization": "Bearer s3cret-token", "x-team": "team-value"},
		Status:  rule.Enabled, Secret: secretA + " " + secretB,
	}
	job := testJob()
	e, out := newTestSender(SenderParams{}).Send(context.Background(), hook, job)

	if diff := cmp.Diff(Outcome{Kind: Success, Reason: ReasonOK}, out); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/hooks/T000/B000/XXXXsecretpath" {
		t.Errorf("request %s %s, want POST to the webhook's path", r.method, r.path)
	}
	if string(r.body) != job.Payload {
		t.Errorf("body %q, want the payload byte for byte %q", r.body, job.Payload)
	}
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	wantHeaders := map[string]string{
		"Content-Type":            "application/json",
		"User-Agent":              "regwebhook/1.2.3",
		"Authorization":           "Bearer s3cret-token",
		"X-Team":                  "team-value",
		"X-Regwebhook-Delivery":   "delivery-1",
		"X-Regwebhook-Event":      "push",
		"X-Regwebhook-Webhook":    "myhook01",
		"X-Regwebhook-Redelivery": "true",
		"Webhook-Id":              "delivery-1",
		"Webhook-Timestamp":       ts,
	}
	gotHeaders := map[string]string{}
	for k := range wantHeaders {
		gotHeaders[k] = r.header.Get(k)
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}
	for _, s := range []string{secretA, secretB} {
		if !verify(t, r.header, r.body, s) {
			t.Errorf("signature %q does not verify with secret %s", r.header.Get("webhook-signature"), s)
		}
	}
	if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("got %d signatures, want 2 (one per secret)", n)
	}

	wantEntry := history.Entry{
		ID: "delivery-1", WebhookID: "wh-1", EventID: "event-1", Action: "push", Attempt: 2, Timestamp: fixedNow,
		Request: history.Request{
			Method:     "POST",
			RequestURI: "http://" + srv.Listener.Addr().String() + "/…",
			Headers: history.MakeHeaders(map[string]string{
				"Content-Type":            "application/json",
				"User-Agent":              "regwebhook/1.2.3",
				"Authorization":           "***",
				"X-Team":                  "***",
				"X-Regwebhook-Delivery":   "delivery-1",
				"X-Regwebhook-Event":      "push",
				"X-Regwebhook-Webhook":    "myhook01",
				"X-Regwebhook-Redelivery": "true",
				"Webhook-Id":              "delivery-1",
				"Webhook-Timestamp":       ts,
				"Webhook-Signature":       "***",
			}),
			Content: job.Payload,
		},
		Response: &history.Response{
			StatusCode: 202, ReasonPhrase: "Accepted", Content: `{"ok":true}`,
			Headers: history.MakeHeaders(map[string]string{"X-Answer": "yes", "Content-Length": "11", "Content-Type": "text/plain; charset=utf-8"}),
		},
	}
	e.Response.Headers = slices.DeleteFunc(e.Response.Headers, func(h history.Header) bool { return h.Name == "Date" })
	if diff := cmp.Diff(wantEntry, e); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}

	js, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-token", "team-value", "secretpath", "token=abc", "MfKQ9r8", "c2Vjb25k",
		r.header.Get("webhook-signature")[3:20]} {
		if strings.Contains(string(js), secret) {
			t.Errorf("entry JSON holds secret %q:\n%s", secret, js)
		}
	}
}

func TestSendNoSecretNoSignature(t *testing.T) {
	c, srv := newCapture(t, ok)
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled}
	job := testJob()
	job.Redelivery = false
	newTestSender(SenderParams{}).Send(context.Background(), hook, job)
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	for _, h := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "X-Regwebhook-Redelivery"} {
		if v, ok := reqs[0].header[h]; ok {
			t.Errorf("header %s: %q sent, want none", h, v)
		}
	}
}

func TestSendOutcomes(t *testing.T) {
	redirected, target := newCapture(t, ok)
	big := strings.Repeat("x", 10<<10)
	tests := []struct {
		name        string
		answer      http.HandlerFunc
		want        Outcome
		wantStatus  int
		wantPhrase  string
		wantContent string
	}{
		{
			name:       "503 with Retry-After pauses",
			answer:     func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Retry-After", "30"); w.WriteHeader(503) },
			want:       Outcome{Kind: Pause, Reason: ReasonRetryAfter, Until: fixedNow.Add(30 * time.Second)},
			wantStatus: 503, wantPhrase: "Service Unavailable",
		},
		{
			name:       "500 is retried",
			answer:     func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) },
			want:       Outcome{Kind: Retry, Reason: ReasonStatus5xx},
			wantStatus: 500, wantPhrase: "Internal Server Error", wantContent: "boom\n",
		},
		{
			name: "redirect is not followed",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
			},
			want:       Outcome{Kind: Retry, Reason: ReasonRedirect},
			wantStatus: 302, wantPhrase: "Found",
		},
		{
			name:       "the response kept is cut at 4 KiB",
			answer:     func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) },
			want:       Outcome{Kind: Success, Reason: ReasonOK},
			wantStatus: 200, wantPhrase: "OK", wantContent: big[:history.MaxContent],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newCapture(t, tt.answer)
			hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled}
			e, out := newTestSender(SenderParams{}).Send(context.Background(), hook, testJob())
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if e.Response == nil {
				t.Fatalf("entry has no response; error %q", e.Error)
			}
			got := []any{e.Response.StatusCode, e.Response.ReasonPhrase, e.Response.Content}
			want := []any{tt.wantStatus, tt.wantPhrase, tt.wantContent}
			if tt.wantContent == "" {
				got = got[:2]
				want = want[:2]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response status, phrase, content (-want +got):\n%s", diff)
			}
			if (out.Kind == Success) != (e.Error == "") {
				t.Errorf("entry error %q for outcome %v", e.Error, out.Kind)
			}
		})
	}
	if n := len(redirected.got()); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

// A request that gets no answer ends after the sender's timeout, whether
// the context it is sent under has no deadline, one much later, or is one
// of those the dispatcher's workers share (requestContexts).
func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	_, srv := newCapture(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL + "/secretpath", Status: rule.Enabled}
	s := newTestSender(SenderParams{Timeout: 50 * time.Millisecond})
	later, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
	}{
		{"no deadline", context.Background()},
		{"a deadline an hour away", later},
		{"shared by requests", s.requestContexts(context.Background(), time.Second).get()},
		{"one a request", s.requestContexts(context.Background(), 0).get()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, out := s.Send(tt.ctx, hook, testJob())
			if diff := cmp.Diff(Outcome{Kind: Retry, Reason: ReasonTimeout}, out); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if e.Response != nil {
				t.Errorf("entry has a response %+v, want none", e.Response)
			}
			want := "no answer from http://" + srv.Listener.Addr().String() + "/… within 50ms"
			if e.Error != want {
				t.Errorf("entry error %q, want %q", e.Error, want)
			}
		})
	}
}

func TestSendNetworkErrorMasksURI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: "http://" + addr + "/services/secretpath", Status: rule.Enabled}
	e, out := newTestSender(SenderParams{}).Send(context.Background(), hook, testJob())
	if diff := cmp.Diff(Outcome{Kind: Retry, Reason: ReasonNetwork}, out); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if e.Error == "" || strings.Contains(e.Error, "secretpath") {
		t.Errorf("entry error %q, want one that does not show the URI's path", e.Error)
	}
}

func TestSendGivesUp(t *testing.T) {
	c, srv := newCapture(t, ok)
	tests := []struct {
		name   string
		hook   rule.Webhook
		deny   []string
		reason string
	}{
		{name: "denied network", hook: rule.Webhook{URI: srv.URL}, deny: []string{"127.0.0.0/8", "::1"}, reason: ReasonDenied},
		{name: "URI that does not parse", hook: rule.Webhook{URI: "http://exa mple.com/secretpath"}, reason: ReasonInvalidRequest},
		{name: "secret that does not decode", hook: rule.Webhook{URI: srv.URL, Secret: "whsec_short"}, reason: ReasonInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deny, err := ParseNetworks(tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			hook := tt.hook
			hook.ID, hook.Name, hook.Status = "wh-1", "myhook01", rule.Enabled
			e, out := newTestSender(SenderParams{DenyNetworks: deny}).Send(context.Background(), &hook, testJob())
			if diff := cmp.Diff(Outcome{Kind: GiveUp, Reason: tt.reason}, out); diff != "" {
				t.Errorf("outcome (-want +got):\n%s (error %q)", diff, e.Error)
			}
			if e.Error == "" || strings.Contains(e.Error, "secretpath") {
				t.Errorf("entry error %q, want one that does not show the URI's path", e.Error)
			}
		})
	}
	if n := len(c.got()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks([]string{"169.254.0.0/16", "fe80::/10", "100.100.100.200", "10.1.2.3/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("100.100.100.200/32"), netip.MustParsePrefix("10.0.0.0/8"),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParseNetworks (-want +got):\n%s", diff)
	}
	if _, err := ParseNetworks([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), `"10.0.0.0/33"`) {
		t.Errorf("ParseNetworks(10.0.0.0/33) error %v, want one naming the network", err)
	}
}

func TestSendTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(ok))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	tests := []struct {
		name     string
		tls      *tls.Config
		insecure bool
		want     Outcome
	}{
		{name: "unknown CA fails", want: Outcome{Kind: Retry, Reason: ReasonTLS}},
		{name: "insecureSkipVerify webhook succeeds", insecure: true, want: Outcome{Kind: Success, Reason: ReasonOK}},
		{name: "CA added for all succeeds", tls: &tls.Config{RootCAs: pool}, want: Outcome{Kind: Success, Reason: ReasonOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled, InsecureSkipVerify: tt.insecure}
			e, out := newTestSender(SenderParams{TLS: tt.tls}).Send(context.Background(), hook, testJob())
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("outcome (-want +got):\n%s (error %q)", diff, e.Error)
			}
		})
	}
}

func TestPing(t *testing.T) {
	c, srv := newCapture(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	hook := &rule.Webhook{
		ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Disabled, Format: rule.ACR,
		Headers: map[string]string{"Authorization": "Bearer s3cret-token"}, Secret: secretA,
	}
	s := newTestSender(SenderParams{NewID: func() string { return "ping-id" }})
	e, err := s.Ping(context.Background(), hook)
	if err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1 (a disabled webhook is pinged too)", len(reqs))
	}
	r := reqs[0]
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("ping body %q: %v", r.body, err)
	}
	wantBody := map[string]any{"id": "ping-id", "action": "ping", "timestamp": fixedNow.Format(time.RFC3339Nano)}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("ping body (-want +got):\n%s", diff)
	}
	gotHeaders := map[string]string{}
	for _, k := range []string{"Authorization", "X-Regwebhook-Event", "X-Regwebhook-Delivery", "Webhook-Id"} {
		gotHeaders[k] = r.header.Get(k)
	}
	wantHeaders := map[string]string{"Authorization": "Bearer s3cret-token", "X-Regwebhook-Event": "ping",
		"X-Regwebhook-Delivery": "ping-id", "Webhook-Id": "ping-id"}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("ping headers (-want +got):\n%s", diff)
	}
	if !verify(t, r.header, r.body, secretA) {
		t.Errorf("ping signature does not verify")
	}
	got := []any{e.ID, e.WebhookID, e.Action, e.Attempt, e.Request.Headers.Get("Authorization"), e.Response.StatusCode, e.Error}
	want := []any{"ping-id", "wh-1", "ping", 1, "***", 204, ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ping entry id, webhook, action, attempt, masked header, status, error (-want +got):\n%s", diff)
	}
}

// After a webhook's URI changed, its requests go to the new URI and their
// history entries name it, masked: the Sender keeps URIs parsed, by URI.
func TestSendFollowsAChangedURI(t *testing.T) {
	rec, srv := newCapture(t, ok)
	s := newTestSender(SenderParams{})
	host := "http://" + srv.Listener.Addr().String()
	cases := []struct{ uri, path, want string }{
		{srv.URL, "/", host},
		{srv.URL + "/hooks/secretpath", "/hooks/secretpath", host + "/…"},
		{srv.URL, "/", host},
	}
	for _, c := range cases {
		hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: c.uri, Status: rule.Enabled}
		e, out := s.Send(context.Background(), hook, testJob())
		if out.Kind != Success {
			t.Fatalf("send to %s: %+v", c.uri, out)
		}
		if e.Request.RequestURI != c.want {
			t.Errorf("entry's URI after the webhook's URI became %s: %q, want %q", c.uri, e.Request.RequestURI, c.want)
		}
	}
	got := rec.got()
	if len(got) != len(cases) {
		t.Fatalf("%d requests received, want %d", len(got), len(cases))
	}
	for i, c := range cases {
		if p := got[i].path; p != c.path {
			t.Errorf("request %d went to path %q, want %q", i, p, c.path)
		}
	}
}

// The URIs a Sender keeps are parsed as url.Parse does and masked as
// history.MaskURI does, and no more than maxTargets of them are kept,
// however many URIs it sent to.
func TestTargetsStayBounded(t *testing.T) {
	s := newTestSender(SenderParams{})
	for i := range 2*maxTargets + 10 {
		uri := fmt.Sprintf("https://user:pw@h%d.example/p?q=%d", i, i)
		to := s.target(uri)
		if got, want := to.masked, history.MaskURI(uri); got != want {
			t.Fatalf("target(%q).masked = %q, want %q", uri, got, want)
		}
		if to.err != nil || to.url.String() != uri {
			t.Fatalf("target(%q) = %v, %v", uri, to.url, to.err)
		}
	}
	n := 0
	s.targets.Range(func(_, _ any) bool { n++; return true })
	if n > maxTargets {
		t.Errorf("%d URIs kept, want at most %d", n, maxTargets)
	}
}

// A URI's user and password go as basic authentication, as an http.Client
// sends them, unless the webhook sets Authorization itself; history records
// neither the URI's password nor that header.
func TestSendUsesTheURIsUserAsBasicAuthentication(t *testing.T) {
	c, srv := newCapture(t, ok)
	s := newTestSender(SenderParams{})
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("ci", "s3cret")
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: u.String() + "/hook", Status: rule.Enabled}
	e, out := s.Send(context.Background(), hook, testJob())
	if out.Kind != Success {
		t.Fatalf("send: %+v", out)
	}
	hook.Headers = map[string]string{"Authorization": "Bearer tok"}
	if _, out := s.Send(context.Background(), hook, testJob()); out.Kind != Success {
		t.Fatalf("send with an Authorization header: %+v", out)
	}
	got := c.got()
	if len(got) != 2 {
		t.Fatalf("%d requests received, want 2", len(got))
	}
	if user, pw, ok := (&http.Request{Header: got[0].header}).BasicAuth(); !ok || user != "ci" || pw != "s3cret" {
		t.Errorf("basic authentication received: %q, %q, %v; want ci, s3cret", user, pw, ok)
	}
	if a := got[1].header.Get("Authorization"); a != "Bearer tok" {
		t.Errorf("Authorization with the webhook's own header: %q, want Bearer tok", a)
	}
	if _, ok := e.Request.Headers.Lookup("Authorization"); ok || strings.Contains(e.Request.RequestURI, "s3cret") {
		t.Errorf("history shows the URI's credentials: %q, %v", e.Request.RequestURI, e.Request.Headers)
	}
}

// An https URI whose server speaks plain HTTP fails with a message that
// says so, as an http.Client's does, and names the URI masked.
func TestSendHTTPSToAPlainServerSaysSo(t *testing.T) {
	_, srv := newCapture(t, ok)
	s := newTestSender(SenderParams{})
	uri := "https://" + srv.Listener.Addr().String() + "/hooks/secretpath"
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: uri, Status: rule.Enabled}
	e, out := s.Send(context.Background(), hook, testJob())
	if out.Kind == Success {
		t.Fatalf("send: %+v, want a failure", out)
	}
	want := "Post https://" + srv.Listener.Addr().String() + "/…: " + http.ErrSchemeMismatch.Error()
	if e.Error != want {
		t.Errorf("entry's error %q, want %q", e.Error, want)
	}
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// A delivery reaches the connection in one write, its headers and its
// body together: a body net/http does not know to be in memory is written
// apart, a second system call and packet for every request.
func TestSendWritesARequestAtOnce(t *testing.T) {
	_, srv := newCapture(t, ok)
	s := newTestSender(SenderParams{})
	var writes atomic.Int32
	dial := s.verified.DialContext
	s.verified.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled}
	for i := range 3 {
		writes.Store(0)
		if _, out := s.Send(context.Background(), hook, testJob()); out.Kind != Success {
			t.Fatalf("send %d: %+v", i, out)
		}
		if n := writes.Load(); n != 1 {
			t.Errorf("request %d took %d writes, want 1", i, n)
		}
	}
}

// Requests share a context for a twentieth of the timeout, and may run
// that much past it, when the dispatcher allows as much (a lease just
// longer than the timeout does not): else each request has a context of
// its own, and the timeout exactly.
func TestRequestContextsRunPastTheTimeoutByALittle(t *testing.T) {
	s := newTestSender(SenderParams{Timeout: 10 * time.Second})
	for _, tt := range []struct {
		late, want time.Duration
	}{
		{time.Hour, 10*time.Second + 500*time.Millisecond},
		{500 * time.Millisecond, 10*time.Second + 500*time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second},
		{0, 10 * time.Second},
		{-time.Second, 10 * time.Second},
	} {
		c := s.requestContexts(context.Background(), tt.late)
		if got := c.longest(); got != tt.want {
			t.Errorf("late %v: a request may run %v, want %v", tt.late, got, tt.want)
		}
		first := c.get()
		_, bounded := first.Deadline()
		if want := tt.want > 10*time.Second; bounded != want {
			t.Errorf("late %v: a request's context has a deadline of its own: %v, want %v (else Send makes one)", tt.late, bounded, want)
		} else if bounded && first != c.get() {
			t.Errorf("late %v: two requests at once got contexts of their own, want one shared", tt.late)
		}
	}
}

// The history records the phrase the server sent after the status code, or
// the standard phrase when it sent none or a status line that does not
// match the code.
func TestReasonPhrase(t *testing.T) {
	for _, tt := range []struct {
		code   int
		status string
		want   string
	}{
		{200, "200 OK", "OK"},
		{200, "200 All good", "All good"},
		{599, "599 Custom", "Custom"},
		{200, "200 ", "OK"},
		{418, "418", "I'm a teapot"},
		{201, "200 Done", "Created"},
		{202, "2O2 Taken", "Accepted"},
		{204, "", "No Content"},
	} {
		if got := reasonPhrase(&http.Response{StatusCode: tt.code, Status: tt.status}); got != tt.want {
			t.Errorf("status %d %q: phrase %q, want %q", tt.code, tt.status, got, tt.want)
		}
	}
}

// Requests to one receiver go over one connection, one after another,
// whether its answers are empty, short, or longer than what history keeps
// (the rest is drained), and a chunked answer too: no answer costs a new
// connection.
func TestSendReusesTheConnection(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"empty", func(w http.ResponseWriter, r *http.Request) {}},
		{"short", ok},
		{"longer than kept", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", history.MaxContent+100))
		}},
		{"as long as kept, chunked", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", history.MaxContent/2))
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, strings.Repeat("x", history.MaxContent/2))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			conns := map[string]bool{}
			_, srv := newCapture(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				conns[r.RemoteAddr] = true
				mu.Unlock()
				tt.answer(w, r)
			})
			s := newTestSender(SenderParams{})
			hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled}
			for range 5 {
				if _, out := s.Send(context.Background(), hook, testJob()); out.Kind != Success {
					t.Fatalf("outcome %+v, want success", out)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(conns) != 1 {
				t.Errorf("5 requests came over %d connections, want 1", len(conns))
			}
		})
	}
}

// A webhook's own Content-Type and User-Agent replace regwebhook's: the
// receiver gets them, and history records each header once, masked as
// custom headers are.
func TestCustomHeadersReplaceContentTypeAndUserAgent(t *testing.T) {
	c, srv := newCapture(t, ok)
	s := newTestSender(SenderParams{})
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL + "/hook", Status: rule.Enabled,
		Headers: map[string]string{"content-type": "text/plain", "User-Agent": "team-bot/2", "X-Team": "a"}}
	e, out := s.Send(context.Background(), hook, testJob())
	if out.Kind != Success {
		t.Fatalf("send: %+v", out)
	}
	got := c.got()
	if len(got) != 1 {
		t.Fatalf("%d requests received, want 1", len(got))
	}
	if ct, ua := got[0].header.Values("Content-Type"), got[0].header.Values("User-Agent"); !slices.Equal(ct, []string{"text/plain"}) || !slices.Equal(ua, []string{"team-bot/2"}) {
		t.Errorf("received Content-Type %q and User-Agent %q, want the webhook's own", ct, ua)
	}
	var names []string
	for _, h := range e.Request.Headers {
		names = append(names, h.Name)
	}
	want := []string{"Content-Type", "User-Agent", "X-Regwebhook-Delivery", "X-Regwebhook-Event", "X-Regwebhook-Redelivery", "X-Regwebhook-Webhook", "X-Team"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("recorded header names (-want +got):\n%s", diff)
	}
	if ct, ua := e.Request.Headers.Get("Content-Type"), e.Request.Headers.Get("User-Agent"); ct != history.Masked || ua != history.Masked {
		t.Errorf("recorded Content-Type %q and User-Agent %q, want both masked", ct, ua)
	}
}
