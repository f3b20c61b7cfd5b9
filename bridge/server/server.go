// Package server assembles regwebhook from its parts — store, webhooks,
// receiver, delivery workers — behind one HTTP listener, and runs it until
// its context ends.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/deliver"
	"github.com/regwebhook/regwebhook/bridge/receive"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	redisstore "github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/bridge/ui"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
	"github.com/regwebhook/regwebhook/config"
)

// Server is one regwebhook process.
type Server struct {
	cfg      *config.Config
	log      logrus.FieldLogger
	store    store.Store
	hooks    *webhooks.Manager
	disp     *deliver.Dispatcher
	http     *http.Server
	ln       net.Listener
	closeOne sync.Once
}

// Params configures New.
type Params struct {
	Config  *config.Config
	Log     logrus.FieldLogger
	Version string
}

// New opens the store, loads the webhooks and listens on the configured
// address; Run serves. On error everything opened is closed again.
func New(ctx context.Context, p Params) (_ *Server, err error) {
	cfg := p.Config
	s := &Server{cfg: cfg, log: p.Log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.store, err = openStore(ctx, cfg, s.log); err != nil {
		return nil, err
	}
	s.hooks = webhooks.New(s.store)
	if err = s.hooks.Load(ctx, cfg.Webhooks); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	storeErrors := newStoreErrors()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		storeErrors, newDepthCollector(s.store, storeErrors))
	// Exported whatever the store, so that one set of alert rules fits
	// both: the embedded store has no such settings and reports 0.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "regwebhook_store_persistence_warnings",
		Help: "Problems with the store's persistence settings found at start (redis: AOF off, maxmemory-policy not noeviction); /readyz lists them.",
	}, func() float64 {
		if w, ok := s.store.(warner); ok {
			return float64(len(w.Warnings()))
		}
		return 0
	}))

	clientTLS, err := deliveryTLS(cfg.Delivery.TLS.CAFile)
	if err != nil {
		return nil, err
	}
	deny, err := deliver.ParseNetworks(cfg.Delivery.DenyNetworks)
	if err != nil {
		return nil, fmt.Errorf("delivery.denynetworks: %w", err)
	}
	sender := deliver.NewSender(deliver.SenderParams{Version: p.Version, Timeout: cfg.Delivery.Timeout, TLS: clientTLS, DenyNetworks: deny,
		IdleConnsPerHost: cfg.Delivery.Workers})
	s.disp = deliver.New(deliver.Params{
		Queue:      s.store,
		Hooks:      s.hooks.Current,
		Sender:     sender,
		Workers:    cfg.Delivery.Workers,
		PerWebhook: cfg.Delivery.PerWebhook,
		Lease:      cfg.Delivery.Lease,
		Retry: deliver.RetryPolicy{
			Initial:     cfg.Delivery.Retry.Initial,
			Max:         cfg.Delivery.Retry.Max,
			MaxAttempts: cfg.Delivery.Retry.MaxAttempts,
			MaxAge:      cfg.Delivery.Retry.MaxAge,
		},
		ShutdownGrace: cfg.HTTP.ShutdownGrace,
		Log:           s.log.WithField("component", "deliver"),
		Registerer:    reg,
		StoreErrors:   storeErrors,
	})
	recv := receive.New(receive.Params{
		Store:        s.store,
		Hooks:        s.hooks.Current,
		Token:        cfg.Receiver.Token,
		MaxBodyBytes: cfg.Receiver.MaxBodyBytes,
		DedupeTTL:    cfg.Store.DedupeTTL,
		Wake:         s.disp.Wake,
		Handoff:      s.disp,
		Log:          s.log.WithField("component", "receive"),
		Registerer:   reg,
		StoreErrors:  storeErrors,
	})

	r := mux.NewRouter()
	r.Handle("/v1/notifications", recv)
	r.Handle("/v1/notifications/", recv)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.HandleFunc("/readyz", s.ready)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.PathPrefix(api.Prefix).Handler(api.New(api.Params{
		Hooks:        s.hooks,
		Records:      s.store,
		Redeliveries: s.store,
		Pinger:       sender,
		Token:        cfg.Admin.Token,
		Wake:         s.disp.Wake,
		Log:          s.log.WithField("component", "api"),
	}))
	// The page's files are public and hold no data; it calls the API above.
	page, err := ui.New()
	if err != nil {
		return nil, err
	}
	r.Handle("/ui", page) // redirects to /ui/
	r.Handle("/", http.RedirectHandler(ui.Prefix, http.StatusFound)).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix(ui.Prefix).Handler(page)
	s.http = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
	}
	if s.ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s (http.addr): %w", cfg.HTTP.Addr, err)
	}
	return s, nil
}

// warner is a store whose persistence settings may lose what it committed
// (redis); its warnings go to the log, /readyz and /metrics.
type warner interface{ Warnings() []string }

func openStore(ctx context.Context, cfg *config.Config, log logrus.FieldLogger) (store.Store, error) {
	limits := store.Limits{History: cfg.History.PerWebhook, DeadLetters: cfg.History.DeadLetters}
	switch cfg.Store.Driver {
	case "embedded", "":
		st, err := sqlite.Open(ctx, sqlite.Options{Dir: cfg.Store.Embedded.Path, Sync: cfg.Store.Embedded.Sync, Limits: limits})
		if err != nil {
			return nil, fmt.Errorf("open embedded store in %s: %w", cfg.Store.Embedded.Path, err)
		}
		return st, nil
	case "redis":
		r := cfg.Store.Redis
		st, err := redisstore.Open(ctx, redisstore.Options{Addr: r.Addr, Password: r.Password, DB: r.DB, Prefix: r.Prefix,
			TLS: r.TLS, CAFile: r.CAFile, Strict: r.Strict, Limits: limits, Inbox: true})
		if err != nil {
			return nil, err // it names the address, without a password
		}
		for _, w := range st.Warnings() {
			log.WithField("store", "redis").Warn(w + " (store.redis.strict: true refuses to start instead)")
		}
		return st, nil
	}
	return nil, fmt.Errorf("store.driver %q is not supported", cfg.Store.Driver)
}

func deliveryTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read delivery.tls.cafile: %w", err)
	}
	pool, err := deliver.CertPool(pem)
	if err != nil {
		return nil, fmt.Errorf("delivery.tls.cafile %s: %w", caFile, err)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Depth counts the jobs in the queue by state.
func (s *Server) Depth(ctx context.Context) (store.Depth, error) {
	return s.store.Depth(ctx, time.Now())
}

// Reload makes a new list of config-file webhooks current (SIGHUP).
func (s *Server) Reload(ctx context.Context, fromConfig []*rule.Webhook) error {
	return s.hooks.Load(ctx, fromConfig)
}

// Run serves until ctx ends, then shuts down: it stops taking envelopes,
// lets the envelopes being received commit, finishes or releases in-flight
// deliveries within http.shutdowngrace, and closes the store.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	dispCtx, stopDisp := context.WithCancel(context.Background())
	defer stopDisp()
	dispDone := make(chan error, 1)
	go func() { dispDone <- s.disp.Run(dispCtx) }()
	// A store shared with other processes: follow their webhook changes.
	watchDone := make(chan struct{})
	if shared, ok := s.store.(store.Shared); ok {
		go func() {
			defer close(watchDone)
			s.hooks.Watch(dispCtx, webhooks.WatchParams{Store: shared, Log: s.log.WithField("component", "webhooks")})
		}()
	} else {
		close(watchDone)
	}

	serveErr := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.HTTP.TLS.CertFile != "" {
			err = s.http.ServeTLS(s.ln, s.cfg.HTTP.TLS.CertFile, s.cfg.HTTP.TLS.KeyFile)
		} else {
			err = s.http.Serve(s.ln)
		}
		serveErr <- err
	}()
	s.log.WithField("addr", s.Addr()).Info("regwebhook serving")

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve http on %s: %w", s.Addr(), err)
	case err = <-dispDone:
		err = fmt.Errorf("delivery workers stopped: %w", err)
	}
	s.log.Info("regwebhook shutting down")
	// Stop leasing and stop taking envelopes at once; both get the grace.
	stopDisp()
	graceCtx, cancel := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownGrace)
	defer cancel()
	if e := s.http.Shutdown(graceCtx); e != nil {
		s.log.WithError(e).Warn("http shutdown: envelopes still being received were cut off; the registry will retry them")
	}
	if e := <-dispDone; e != nil && err == nil && !errors.Is(e, context.Canceled) {
		err = e
	}
	<-watchDone
	return err
}

// Close closes the listener and the store. It is safe to call twice.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				s.log.WithError(err).Warn("close store")
			}
		}
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": err.Error()})
		return
	}
	body := map[string]any{"status": "ok", "store": s.cfg.Store.Driver}
	if wr, ok := s.store.(warner); ok && len(wr.Warnings()) > 0 {
		body["warnings"] = wr.Warnings()
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
