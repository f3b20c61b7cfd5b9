package deliver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// deny parses networks for a test.
func deny(t *testing.T, networks ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseNetworks(networks)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// denial is what a request refused by delivery.denynetworks leaves: no
// request made, given up at once, the error saying why and never the URI's
// path.
func checkDenied(t *testing.T, what string, e history.Entry, out Outcome) {
	t.Helper()
	if diff := cmp.Diff(Outcome{Kind: GiveUp, Reason: ReasonDenied}, out); diff != "" {
		t.Errorf("%s: outcome (-want +got):\n%s (error %q)", what, diff, e.Error)
	}
	if e.Response != nil || !strings.Contains(e.Error, ErrDeniedNetwork.Error()) || strings.Contains(e.Error, "secretpath") {
		t.Errorf("%s: entry error %q, response %+v; want the denial, no response, no path", what, e.Error, e.Response)
	}
}

// delivery.denynetworks is checked on the address dialed, after DNS and
// with IPv4-mapped IPv6 addresses unmapped, for deliveries and pings alike.
// The allowed rows show that each URI does reach the receiver when its
// network is not denied.
func TestDenyNetworksAtConnect(t *testing.T) {
	c, srv := newCapture(t, ok)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	at := func(host string) string {
		return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/secretpath"
	}
	tests := []struct {
		name   string
		uri    string
		deny   []string
		denied bool
	}{
		{name: "an address in a denied network", uri: at("127.0.0.1"), deny: []string{"127.0.0.0/8"}, denied: true},
		{name: "a name that resolves to a denied address", uri: at("localhost"), deny: []string{"127.0.0.0/8", "::1/128"}, denied: true},
		{name: "an IPv4-mapped IPv6 address of a denied network", uri: at("::ffff:127.0.0.1"), deny: []string{"127.0.0.0/8"}, denied: true},
		{name: "an address of a denied IPv4-mapped IPv6 network", uri: at("127.0.0.1"), deny: []string{"::ffff:127.0.0.0/104"}, denied: true},
		{name: "the metadata endpoint, IPv4-mapped, with the default list", uri: "http://[::ffff:169.254.169.254]/secretpath",
			deny: []string{"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"}, denied: true},
		{name: "allowed: the name", uri: at("localhost"), deny: []string{"169.254.0.0/16"}},
		{name: "allowed: the IPv4-mapped address", uri: at("::ffff:127.0.0.1"), deny: []string{"169.254.0.0/16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(c.got())
			// A short time-out: an address that is not refused and does
			// not answer shows as a time-out, not as a denial.
			s := newTestSender(SenderParams{DenyNetworks: deny(t, tt.deny...), Timeout: 2 * time.Second})
			hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: tt.uri, Status: rule.Enabled}
			e, out := s.Send(context.Background(), hook, testJob())
			ping, err := s.Ping(context.Background(), hook)
			if err != nil {
				t.Fatal(err)
			}
			reached := len(c.got()) - before
			if !tt.denied {
				if out.Kind != Success || ping.Error != "" || reached != 2 {
					t.Errorf("delivery %v (%q), ping error %q, %d requests reached the receiver; want both through", out, e.Error, ping.Error, reached)
				}
				return
			}
			checkDenied(t, "delivery", e, out)
			checkDenied(t, "ping", ping, Outcome{Kind: GiveUp, Reason: ReasonDenied})
			if reached != 0 {
				t.Errorf("%d requests reached the receiver, want none", reached)
			}
		})
	}
}

// forwardProxy is a plain HTTP proxy on 127.0.0.2 that answers every
// request itself, as if the webhook had, and records the URIs it was asked
// for.
type forwardProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	asks []string
}

func newForwardProxy(t *testing.T) *forwardProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address for the proxy: %v", err)
	}
	p := &forwardProxy{}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p.mu.Lock()
		p.asks = append(p.asks, r.RequestURI)
		p.mu.Unlock()
		_, _ = io.WriteString(w, "forwarded")
	}))
	p.srv.Listener.Close()
	p.srv.Listener = l
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *forwardProxy) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asks...)
}

// Through an HTTP proxy (HTTPS_PROXY, HTTP_PROXY) the dialer sees only the
// proxy's address, so the webhook's host is checked before the request is
// handed over: an address as written, a name by what it resolves to here.
// A name that does not resolve here goes to the proxy, which resolves it
// itself; a proxy in a denied network is refused too.
func TestDenyNetworksThroughProxy(t *testing.T) {
	proxy := newForwardProxy(t)
	proxyURL, err := url.Parse(proxy.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "webhook.invalid"); err == nil {
		t.Skip("webhook.invalid resolves here")
	}
	tests := []struct {
		name    string
		uri     string
		deny    []string
		through bool // the proxy is asked for it
	}{
		{name: "an address in a denied network", uri: "http://169.254.169.254/secretpath", deny: []string{"169.254.0.0/16"}},
		{name: "an IPv4-mapped IPv6 address of a denied network", uri: "http://[::ffff:169.254.169.254]/secretpath", deny: []string{"169.254.0.0/16"}},
		{name: "a name that resolves here to a denied address", uri: "http://localhost:8080/secretpath", deny: []string{"127.0.0.1/32", "::1/128"}},
		{name: "a proxy in a denied network", uri: "http://webhook.invalid/secretpath", deny: []string{"127.0.0.2/32"}},
		{name: "a name that does not resolve here: the proxy's to resolve", uri: "http://webhook.invalid/secretpath", deny: []string{"169.254.0.0/16"}, through: true},
		{name: "an allowed address", uri: "http://192.0.2.10/secretpath", deny: []string{"169.254.0.0/16"}, through: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(proxy.asked())
			s := newTestSender(SenderParams{DenyNetworks: deny(t, tt.deny...), Proxy: http.ProxyURL(proxyURL), Timeout: 5 * time.Second})
			hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: tt.uri, Status: rule.Enabled}
			e, out := s.Send(context.Background(), hook, testJob())
			ping, err := s.Ping(context.Background(), hook)
			if err != nil {
				t.Fatal(err)
			}
			asked := proxy.asked()[before:]
			if tt.through {
				if diff := cmp.Diff([]string{tt.uri, tt.uri}, asked); diff != "" {
					t.Errorf("the proxy was asked for (-want +got):\n%s", diff)
				}
				if out.Kind != Success || ping.Error != "" {
					t.Errorf("delivery %v (%q), ping error %q; want both through the proxy", out, e.Error, ping.Error)
				}
				return
			}
			checkDenied(t, "delivery", e, out)
			checkDenied(t, "ping", ping, Outcome{Kind: GiveUp, Reason: ReasonDenied})
			if len(asked) != 0 {
				t.Errorf("the proxy was asked for %v, want nothing", asked)
			}
		})
	}
}

// A receiver that answers with an endless body (10 MB, then it holds the
// answer open) does not keep regwebhook reading: it keeps the first 4 KiB,
// drains a little more for the connection's sake, and closes it.
func TestResponseBodyReadUpToALimit(t *testing.T) {
	const size = 10 << 20
	var (
		mu      sync.Mutex
		written int
		gone    = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				break
			}
			mu.Lock()
			written += len(chunk)
			mu.Unlock()
		}
		<-r.Context().Done() // the client closed the connection
		close(gone)
	}))
	t.Cleanup(srv.Close)

	// No time-out to speak of: only the limit can end the read.
	s := newTestSender(SenderParams{Timeout: time.Hour})
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled}
	type sent struct {
		e   history.Entry
		out Outcome
	}
	done := make(chan sent, 1)
	go func() {
		e, out := s.Send(context.Background(), hook, testJob())
		done <- sent{e, out}
	}()
	var got sent
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Send still reads the endless body after 30s")
	}
	if diff := cmp.Diff(Outcome{Kind: Success, Reason: ReasonOK}, got.out); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if got.e.Response == nil || len(got.e.Response.Content) != history.MaxContent {
		t.Fatalf("response kept: %+v, want the first %d bytes", got.e.Response, history.MaxContent)
	}
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatal("the connection is still open 30s after Send returned")
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("the receiver wrote %d of its %d bytes before regwebhook closed the connection (the rest of what it wrote sat in socket buffers)", written, size)
}

// The errors of failed attempts, which history, show's lastError and the
// log carry, name the URI as scheme://host/… only: Go's own errors quote the
// whole URL, and a Slack-style URL carries its secret in the path.
func TestAttemptErrorsMaskTheURI(t *testing.T) {
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with a reset
		}
		conn.Close()
	}))
	t.Cleanup(reset.Close)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leave
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // before slow.Close
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(ok))
	t.Cleanup(tlsSrv.Close)

	const path = "/services/T000/B000/secretpath?token=secretquery"
	tests := []struct {
		name, uri, reason string
	}{
		{"connection refused", "http://" + refused + path, ReasonNetwork},
		{"connection reset", reset.URL + path, ReasonNetwork},
		{"time-out", slow.URL + path, ReasonTimeout},
		{"500", failing.URL + path, ReasonStatus5xx},
		{"unknown CA", tlsSrv.URL + path, ReasonTLS},
		{"plain HTTP to an HTTPS URI", strings.Replace(failing.URL, "http://", "https://", 1) + path, ReasonNetwork},
		{"denied network", "http://169.254.169.254" + path, ReasonDenied},
	}
	s := newTestSender(SenderParams{Timeout: 300 * time.Millisecond, DenyNetworks: deny(t, "169.254.0.0/16")})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: tt.uri, Status: rule.Enabled}
			e, out := s.Send(context.Background(), hook, testJob())
			if out.Reason != tt.reason {
				t.Errorf("reason %q, want %q (error %q)", out.Reason, tt.reason, e.Error)
			}
			if e.Error == "" || strings.Contains(e.Error, "secret") || strings.Contains(e.Error, "T000") {
				t.Errorf("error %q, want one that does not show the URI's path or query", e.Error)
			}
			if e.Request.RequestURI != history.MaskURI(tt.uri) {
				t.Errorf("request URI %q, want %q", e.Request.RequestURI, history.MaskURI(tt.uri))
			}
			t.Logf("error: %s", e.Error)
		})
	}
}

// errors.Is sees ErrDeniedNetwork through the proxy check's error, so that
// Classify gives up on it.
func TestDenyProxiedWrapsErrDenied(t *testing.T) {
	proxy := denyProxied(http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.example:3128"}), deny(t, "10.0.0.0/8"))
	req := httptest.NewRequest(http.MethodPost, "http://10.1.2.3/x", nil)
	if _, err := proxy(req); !errors.Is(err, ErrDeniedNetwork) {
		t.Errorf("proxy(10.1.2.3) error %v, want ErrDeniedNetwork", err)
	}
	if got := denyProxied(nil, deny(t, "10.0.0.0/8")); got != nil {
		t.Errorf("denyProxied(nil) is not nil: a transport without a proxy must stay without one")
	}
}
