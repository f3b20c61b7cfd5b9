package deliver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// newTransport returns the transport of one connection pool. insecure skips
// TLS verification: only for the webhooks that ask for it. proxy picks the
// HTTP proxy of a request (nil: none).
func newTransport(base *tls.Config, insecure bool, deny []netip.Prefix, proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	cfg.InsecureSkipVerify = insecure //nolint:gosec // the webhook's owner asked for it (insecureSkipVerify)
	dialer := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   denyControl(deny),
	}
	return &http.Transport{
		Proxy:                 denyProxied(proxy, deny),
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// denyControl refuses to connect to an address in deny. It runs on the
// address about to be dialed, so it holds whatever a name resolves to.
func denyControl(deny []netip.Prefix) func(network, address string, c syscall.RawConn) error {
	if len(deny) == 0 {
		return nil
	}
	return func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, err)
		}
		if p, ok := denied(deny, ip); ok {
			return fmt.Errorf("dial %s: %w %s", address, ErrDeniedNetwork, p)
		}
		return nil
	}
}

// denied returns the network of deny that holds ip, an IPv4-mapped IPv6
// address counting as its IPv4 address.
func denied(deny []netip.Prefix, ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap().WithZone("")
	for _, p := range deny {
		if p.Contains(ip) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// denyProxied returns proxy with a check of deny in front of it. Through a
// proxy the dialer sees only the proxy's address, and the proxy connects to
// the webhook; so the request's own host is checked here: an address as
// written, a name by what it resolves to here. A name that does not resolve
// here is left to the proxy, which resolves names itself (and may be
// answered otherwise than the check was): to hold denynetworks against DNS
// tricks through a proxy, the proxy must filter too (docs/design.md,
// "Outbound safety").
func denyProxied(proxy func(*http.Request) (*url.URL, error), deny []netip.Prefix) func(*http.Request) (*url.URL, error) {
	if proxy == nil || len(deny) == 0 {
		return proxy
	}
	return func(req *http.Request) (*url.URL, error) {
		u, err := proxy(req)
		if err != nil || u == nil {
			return u, err
		}
		host := req.URL.Hostname()
		var addrs []netip.Addr
		if a, perr := netip.ParseAddr(host); perr == nil {
			addrs = []netip.Addr{a}
		} else if addrs, err = net.DefaultResolver.LookupNetIP(req.Context(), "ip", host); err != nil {
			return u, nil // the proxy's to resolve, and to refuse
		}
		for _, a := range addrs {
			if p, ok := denied(deny, a); ok {
				return nil, fmt.Errorf("%s is %s, through proxy %s: %w %s", host, a, u.Host, ErrDeniedNetwork, p)
			}
		}
		return u, nil
	}
}

// ParseNetworks parses delivery.denynetworks: CIDR prefixes, or single
// addresses. An IPv4-mapped IPv6 network (::ffff:169.254.0.0/112) is its
// IPv4 network (169.254.0.0/16): addresses are compared unmapped.
func ParseNetworks(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, fmt.Errorf("network %q: %w", c, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// CertPool returns the system's roots with the PEM certificates of
// delivery.tls.cafile added, for SenderParams.TLS.RootCAs.
func CertPool(pem []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return pool, nil
}
