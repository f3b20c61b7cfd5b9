// Package registrytest runs the real distribution v3 registry in-process for
// a test, and acts as its user: push, tag, delete and pull images with
// go-containerregistry, so the registry sends its real notifications.
//
// It knows nothing about regwebhook; it only points the registry's
// notification endpoint at a URL.
package registrytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // registers the "filesystem" driver
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"
)

// Options configures the registry. The zero value is a registry that sends
// no notifications.
type Options struct {
	// NotifyURL is where the registry posts notifications, e.g.
	// http://127.0.0.1:PORT/v1/notifications. Empty: no notification
	// endpoint.
	NotifyURL string
	// NotifyToken, when set, is sent as "Authorization: Bearer <token>".
	NotifyToken string
	// Timeout, Threshold and Backoff tune the endpoint (defaults 2s, 3,
	// 200ms). The registry re-sends an event whose answer is slower than
	// Timeout, retries Threshold times at once, then once per Backoff.
	Timeout   time.Duration
	Threshold int
	Backoff   time.Duration
	// IncludeReferences adds target.references to manifest events.
	IncludeReferences bool
	// Log receives the registry's logs; nil discards them. The registry logs
	// through the process-wide logrus standard logger, so this setting is
	// process-wide too: the last Start wins.
	Log io.Writer
}

// Registry is a running registry with filesystem storage under a temporary
// directory, deletes enabled and no authentication. Its methods fail the
// test they are given on any error.
type Registry struct {
	srv  *httptest.Server
	host string
}

// Start runs a registry until the test ends.
//
// Distribution v3.1.2 has no way to stop an app's notification endpoints:
// after the test, events it could not deliver stay queued in this process
// and are retried against NotifyURL once per Backoff. Tests should let the
// deliveries they caused finish, or accept that the retries go nowhere.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	if o.Log == nil {
		o.Log = io.Discard
	}
	logrus.SetOutput(o.Log)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registrytest: listen: %v", err)
	}
	// http.addr is set to the real address so events carry its port in
	// source.addr, as with the registry binary.
	doc, err := configYAML(o, ln.Addr().String(), t.TempDir())
	if err != nil {
		ln.Close()
		t.Fatalf("registrytest: %v", err)
	}
	cfg, err := configuration.Parse(bytes.NewReader(doc))
	if err != nil {
		ln.Close()
		t.Fatalf("registrytest: parse registry config: %v\n%s", err, doc)
	}
	app, err := newApp(t, cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("registrytest: %v\n%s", err, doc)
	}

	srv := httptest.NewUnstartedServer(app)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := app.Shutdown(); err != nil {
			t.Errorf("registrytest: shut down registry: %v", err)
		}
	})
	return &Registry{srv: srv, host: ln.Addr().String()}
}

// newApp turns NewApp's panics on a bad config into an error.
func newApp(t testing.TB, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("start registry app: %v", p)
		}
	}()
	return handlers.NewApp(t.Context(), cfg), nil
}

// configYAML is the registry configuration for o, as the YAML document the
// registry binary would read: Parse applies the binary's defaults to it.
func configYAML(o Options, addr, root string) ([]byte, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("make http secret: %w", err)
	}
	doc := map[string]any{
		"version": "0.1",
		"log": map[string]any{
			"level":     "error",
			"formatter": "text",
			"accesslog": map[string]any{"disabled": true},
		},
		"http": map[string]any{"addr": addr, "secret": hex.EncodeToString(secret)},
		"storage": map[string]any{
			"filesystem":  map[string]any{"rootdirectory": root},
			"delete":      map[string]any{"enabled": true},
			"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
		},
	}
	if o.NotifyURL != "" {
		endpoint := map[string]any{
			"name":      "regwebhook",
			"url":       o.NotifyURL,
			"timeout":   orDefault(o.Timeout, 2*time.Second).String(),
			"threshold": orDefault(o.Threshold, 3),
			"backoff":   orDefault(o.Backoff, 200*time.Millisecond).String(),
		}
		if o.NotifyToken != "" {
			// Header values are lists in the registry's config.
			endpoint["headers"] = map[string]any{"Authorization": []string{"Bearer " + o.NotifyToken}}
		}
		doc["notifications"] = map[string]any{
			"events":    map[string]any{"includereferences": o.IncludeReferences},
			"endpoints": []any{endpoint},
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode registry config: %w", err)
	}
	return out, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Host is the registry's address, 127.0.0.1:port, as it appears in image
// references and in events' request.host.
func (r *Registry) Host() string { return r.host }

// URL is the registry's base URL, http://127.0.0.1:port.
func (r *Registry) URL() string { return r.srv.URL }
