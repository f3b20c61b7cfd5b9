package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/bridge/rule"
)

// Validate checks every value and returns an Errors with all that is wrong,
// or nil. Its errors name keys but no file or line: Load and Parse add
// those. Webhooks are checked as they are, so fill in their Defaults first.
// Validate reads the CA, certificate and key files the config names.
func (c *Config) Validate() error {
	if errs := validate(c, "", nil); len(errs) > 0 {
		return errs
	}
	return nil
}

// checker collects errors, placing each on the line of its key.
type checker struct {
	file  string
	lines map[string]int // full key path → line; nil when there is no file
	errs  Errors
}

// errorf records that key is wrong.
func (c *checker) errorf(key, format string, args ...any) {
	c.relatedf(key, key, format, args...)
}

// relatedf records that key is wrong, on key's line or, when key is not in
// the file (its default is wrong because of another key), on related's.
func (c *checker) relatedf(key, related, format string, args ...any) {
	line, ok := c.lines[key]
	if !ok {
		line = c.lines[related]
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

func validate(cfg *Config, file string, lines map[string]int) Errors {
	c := &checker{file: file, lines: lines}
	if cfg.Version != 1 {
		c.errorf("version", "must be 1, got %d", cfg.Version)
	}
	c.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	c.oneOf("log.format", cfg.Log.Format, "text", "json")
	c.hostPort("http.addr", cfg.HTTP.Addr, ":5080")
	c.positive("http.shutdowngrace", cfg.HTTP.ShutdownGrace)
	c.serverTLS(cfg.HTTP.TLS)
	c.atLeast("receiver.maxbodybytes", cfg.Receiver.MaxBodyBytes, 1)
	c.store(cfg.Store)
	c.delivery(cfg.Delivery)
	c.atLeast("history.perwebhook", int64(cfg.History.PerWebhook), 1)
	c.atLeast("history.deadletters", int64(cfg.History.DeadLetters), 1)
	c.webhooks(cfg.Webhooks)
	return c.errs
}

func (c *checker) store(s Store) {
	c.oneOf("store.driver", s.Driver, "embedded", "redis")
	if s.Embedded.Path == "" {
		c.errorf("store.embedded.path", "must not be empty")
	}
	c.oneOf("store.embedded.sync", s.Embedded.Sync, "full", "normal")
	c.redisAddr("store.redis.addr", s.Redis.Addr)
	c.atLeast("store.redis.db", int64(s.Redis.DB), 0)
	if s.Redis.Prefix == "" {
		c.errorf("store.redis.prefix", "must not be empty")
	}
	c.caFile("store.redis.cafile", s.Redis.CAFile)
	c.positive("store.dedupettl", s.DedupeTTL)
}

func (c *checker) delivery(d Delivery) {
	c.atLeast("delivery.workers", int64(d.Workers), 1)
	c.atLeast("delivery.perwebhook", int64(d.PerWebhook), 1)
	c.positive("delivery.timeout", d.Timeout)
	if d.Lease <= d.Timeout {
		c.relatedf("delivery.lease", "delivery.timeout", "must be longer than delivery.timeout (%s), got %s", d.Timeout, d.Lease)
	}
	c.positive("delivery.retry.initial", d.Retry.Initial)
	if d.Retry.Max < d.Retry.Initial {
		c.relatedf("delivery.retry.max", "delivery.retry.initial", "must be at least delivery.retry.initial (%s), got %s", d.Retry.Initial, d.Retry.Max)
	}
	c.atLeast("delivery.retry.maxattempts", int64(d.Retry.MaxAttempts), 1)
	c.positive("delivery.retry.maxage", d.Retry.MaxAge)
	for i, s := range d.DenyNetworks {
		if _, err := netip.ParsePrefix(s); err != nil {
			key := fmt.Sprintf("delivery.denynetworks[%d]", i)
			c.errorf(key, "%q is not a network in CIDR form, like \"10.0.0.0/8\" or \"fd00::/8\"", s)
		}
	}
	c.caFile("delivery.tls.cafile", d.TLS.CAFile)
}

// webhooks checks each webhook, and that no two share a name.
func (c *checker) webhooks(hooks []*rule.Webhook) {
	first := map[string]int{}
	for i, w := range hooks {
		item := fmt.Sprintf("webhooks[%d]", i)
		if w == nil {
			c.errorf(item, "is empty")
			continue
		}
		var fe *rule.FieldError
		if err := w.Validate(); errors.As(err, &fe) {
			c.relatedf(item+"."+fe.Field, item, "%s", fe.Message)
			if fe.Field == "name" {
				continue
			}
		} else if err != nil {
			c.errorf(item, "%v", err)
		}
		if j, dup := first[w.Name]; dup {
			c.relatedf(item+".name", item, "%q is already used by webhooks[%d]", w.Name, j)
			continue
		}
		first[w.Name] = i
	}
}

func (c *checker) oneOf(key, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		c.errorf(key, "%q is not one of %s", got, strings.Join(allowed, ", "))
	}
}

func (c *checker) atLeast(key string, got, least int64) {
	if got < least {
		c.errorf(key, "must be at least %d, got %d", least, got)
	}
}

func (c *checker) positive(key string, got time.Duration) {
	if got <= 0 {
		c.errorf(key, "must be more than 0, got %s", got)
	}
}

// hostPort checks a listen or dial address: an optional host, a numeric port.
func (c *checker) hostPort(key, addr, example string) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		c.errorf(key, "%q is not host:port, like %q", addr, example)
	}
}

// redisAddr takes host:port or a redis:// or rediss:// URL, as go-redis
// parses it. The URL may hold a password, so errors do not show it.
func (c *checker) redisAddr(key, addr string) {
	if !strings.Contains(addr, "://") {
		c.hostPort(key, addr, "127.0.0.1:6379")
		return
	}
	if !strings.HasPrefix(addr, "redis://") && !strings.HasPrefix(addr, "rediss://") {
		c.errorf(key, "must be host:port or a redis:// or rediss:// URL")
		return
	}
	if _, err := redis.ParseURL(addr); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.errorf(key, "is not a valid Redis URL: %v", err)
	}
}

func (c *checker) serverTLS(t ServerTLS) {
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.KeyFile == "":
		c.relatedf("http.tls.keyfile", "http.tls.certfile", "must be set with http.tls.certfile")
	case t.CertFile == "":
		c.relatedf("http.tls.certfile", "http.tls.keyfile", "must be set with http.tls.keyfile")
	default:
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			c.errorf("http.tls.certfile", "cannot load it with http.tls.keyfile: %v", err)
		}
	}
}

// caFile checks that a CA file, when set, holds at least one PEM certificate.
func (c *checker) caFile(key, path string) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		c.errorf(key, "cannot read it: %v", err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		c.errorf(key, "%q holds no PEM certificate", path)
	}
}
