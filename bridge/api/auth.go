package api

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/regwebhook/regwebhook/internal/bearer"
)

// guard lets a request through to next only if SPEC §5 allows it, checking
// in order: who may call (token, or loopback and Host), then the content
// type of a change. X-Forwarded-For and the like are never read: behind a
// proxy, configure admin.token.
func (a *api) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Token != "" {
			if !bearer.Match(r.Header.Get("Authorization"), a.Token) {
				a.Log.WithField("remote", r.RemoteAddr).Warn("API call refused: missing or wrong admin token")
				w.Header().Set("WWW-Authenticate", `Bearer realm="regwebhook"`)
				a.fail(w, r, &ErrorDetail{Code: CodeUnauthorized, Message: "missing or wrong bearer token (admin.token)"})
				return
			}
			// A browser cannot send the token cross-site, so the content
			// type only has to say what a body is.
			if changes(r) && hasBody(r) && !isJSON(r) {
				a.fail(w, r, &ErrorDetail{Code: CodeUnsupportedMedia, Message: "a request body must be Content-Type: application/json"})
				return
			}
		} else {
			if !loopback(r.RemoteAddr) {
				a.Log.WithField("remote", r.RemoteAddr).Warn("API call refused: no admin.token is configured, so only loopback clients are answered")
				a.fail(w, r, &ErrorDetail{Code: CodeForbidden,
					Message: "no admin.token is configured: the API answers only clients on this machine (loopback)"})
				return
			}
			// Against DNS rebinding: a page of another site whose name now
			// resolves to 127.0.0.1 still sends its own name as Host.
			if !localHost(r.Host) {
				a.fail(w, r, &ErrorDetail{Code: CodeForbidden,
					Message: "no admin.token is configured: the API answers only requests to localhost, 127.0.0.1 or [::1]"})
				return
			}
			// A cross-site form can POST, but not as application/json.
			if changes(r) && !isJSON(r) {
				a.fail(w, r, &ErrorDetail{Code: CodeUnsupportedMedia,
					Message: "no admin.token is configured: changes need Content-Type: application/json"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// changes reports whether r may change something: anything but GET and HEAD.
func changes(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// hasBody reports whether r comes with a body (or may: chunked).
func hasBody(r *http.Request) bool { return r.ContentLength != 0 }

// isJSON reports whether r's Content-Type is application/json, parameters
// such as charset allowed.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// loopback reports whether a RemoteAddr ("ip:port") is a loopback address.
func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// localHost reports whether a Host header names this machine: localhost,
// 127.0.0.1 or [::1], with or without a port.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}
