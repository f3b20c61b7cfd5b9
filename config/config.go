// Package config reads regwebhook's YAML config file: defaults first, the
// file over them, then one Validate whose errors name the key and its line.
package config

import (
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
)

// Config is the whole config file.
type Config struct {
	Version  int             `yaml:"version"`
	Log      Log             `yaml:"log"`
	HTTP     HTTP            `yaml:"http"`
	Receiver Receiver        `yaml:"receiver"`
	Admin    Admin           `yaml:"admin"`
	Store    Store           `yaml:"store"`
	Delivery Delivery        `yaml:"delivery"`
	History  History         `yaml:"history"`
	Webhooks []*rule.Webhook `yaml:"webhooks"`
}

// Log sets the log's level (debug, info, warn, error) and format (text, json).
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// HTTP is the one listener: receiver, API, page, metrics and health.
type HTTP struct {
	Addr          string        `yaml:"addr"`
	ShutdownGrace time.Duration `yaml:"shutdowngrace"`
	TLS           ServerTLS     `yaml:"tls"`
}

// ServerTLS serves HTTPS when both files are set.
type ServerTLS struct {
	CertFile string `yaml:"certfile"`
	KeyFile  string `yaml:"keyfile"`
}

// Receiver is the endpoint the registry posts its envelopes to.
type Receiver struct {
	Token        string `yaml:"token"`
	MaxBodyBytes int64  `yaml:"maxbodybytes"`
}

// Admin guards the API.
type Admin struct {
	Token string `yaml:"token"`
}

// Store picks and sets up where state is kept.
type Store struct {
	Driver    string        `yaml:"driver"` // embedded | redis
	Embedded  Embedded      `yaml:"embedded"`
	Redis     Redis         `yaml:"redis"`
	DedupeTTL time.Duration `yaml:"dedupettl"`
}

// Embedded is the SQLite store.
type Embedded struct {
	Path string `yaml:"path"`
	Sync string `yaml:"sync"` // full | normal
}

// Redis is the Redis store.
type Redis struct {
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	Prefix   string `yaml:"prefix"`
	Strict   bool   `yaml:"strict"`
	TLS      bool   `yaml:"tls"`
	CAFile   string `yaml:"cafile"`
}

// Delivery sets how jobs are delivered.
type Delivery struct {
	Workers      int           `yaml:"workers"`
	PerWebhook   int           `yaml:"perwebhook"`
	Timeout      time.Duration `yaml:"timeout"`
	Lease        time.Duration `yaml:"lease"`
	Retry        Retry         `yaml:"retry"`
	DenyNetworks []string      `yaml:"denynetworks"`
	TLS          ClientTLS     `yaml:"tls"`
}

// Retry sets the backoff and when to give up.
type Retry struct {
	Initial     time.Duration `yaml:"initial"`
	Max         time.Duration `yaml:"max"`
	MaxAttempts int           `yaml:"maxattempts"`
	MaxAge      time.Duration `yaml:"maxage"`
}

// ClientTLS adds a CA for every webhook.
type ClientTLS struct {
	CAFile string `yaml:"cafile"`
}

// History bounds what is kept per webhook.
type History struct {
	PerWebhook  int `yaml:"perwebhook"`
	DeadLetters int `yaml:"deadletters"`
}

// Default returns the config with every default, as `serve` runs without a
// file.
func Default() *Config {
	return &Config{
		Version:  1,
		Log:      Log{Level: "info", Format: "text"},
		HTTP:     HTTP{Addr: ":5080", ShutdownGrace: 30 * time.Second},
		Receiver: Receiver{MaxBodyBytes: 1 << 20},
		Store: Store{
			Driver:    "embedded",
			Embedded:  Embedded{Path: "./regwebhook-data", Sync: "full"},
			Redis:     Redis{Addr: "127.0.0.1:6379", Prefix: "regwebhook:"},
			DedupeTTL: 24 * time.Hour,
		},
		Delivery: Delivery{
			Workers:      32,
			PerWebhook:   8,
			Timeout:      10 * time.Second,
			Lease:        time.Minute,
			Retry:        Retry{Initial: time.Second, Max: time.Hour, MaxAttempts: 15, MaxAge: 24 * time.Hour},
			DenyNetworks: []string{"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"},
		},
		History: History{PerWebhook: 100, DeadLetters: 10000},
	}
}
