package deliver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// newTransport returns the transport of one connection pool. insecure skips
// TLS verification: only for the webhooks that ask for it.
func newTransport(base *tls.Config, insecure bool, deny []netip.Prefix) *http.Transport {
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
		Proxy:                 http.ProxyFromEnvironment,
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
		ip = ip.Unmap().WithZone("")
		for _, p := range deny {
			if p.Contains(ip) {
				return fmt.Errorf("dial %s: %w %s", address, ErrDeniedNetwork, p)
			}
		}
		return nil
	}
}

// ParseNetworks parses delivery.denynetworks: CIDR prefixes, or single
// addresses.
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
