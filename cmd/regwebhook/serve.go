package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/regwebhook/regwebhook/bridge/server"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/gogc"
)

const serveLong = `Run regwebhook: take the registry's notifications on /v1/notifications,
deliver them to the webhooks, and serve /healthz, /readyz and /metrics.

The config file comes from --config or $REGWEBHOOK_CONFIG; without one,
every default applies (embedded store in ./regwebhook-data, no webhooks).
SIGHUP re-reads the file's webhooks; SIGTERM or SIGINT shuts down gracefully.`

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the service",
		Long:  serveLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				path = os.Getenv("REGWEBHOOK_CONFIG")
			}
			return serve(cmd.Context(), path)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (env REGWEBHOOK_CONFIG)")
	return cmd
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path, os.LookupEnv)
}

func serve(ctx context.Context, path string) error {
	gogc.Set(os.Getenv)
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	// Take SIGHUP before starting: its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, server.Params{Config: cfg, Log: log, Version: version})
	if err != nil {
		return err
	}
	// The first signal starts a graceful shutdown; a second ends the process.
	go func() {
		<-ctx.Done()
		stop()
	}()
	go func() {
		for range hup {
			reload(ctx, srv, path, log)
		}
	}()
	return srv.Run(ctx)
}

// reload re-reads the config file's webhooks; a bad file keeps the old ones.
func reload(ctx context.Context, srv *server.Server, path string, log logrus.FieldLogger) {
	if path == "" {
		log.Info("SIGHUP ignored: no config file")
		return
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err == nil {
		err = srv.Reload(ctx, cfg.Webhooks)
	}
	if err != nil {
		log.WithError(err).Error("reload webhooks from " + path + ": kept the webhooks in force")
		return
	}
	log.WithField("webhooks", len(cfg.Webhooks)).Info("reloaded webhooks from " + path)
}

func newLogger(c config.Log) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	level, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(level)
	if c.Format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	return log, nil
}
