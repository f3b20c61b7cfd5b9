package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// TestValidateRules gives each rule a file that breaks it (want: the exact
// errors) or a file that it must accept (want: "").
func TestValidateRules(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"version 1", "version: 1", ""},
		{"version 2", "version: 2", "t.yml:1: version: must be 1, got 2"},
		{"version 0", "version: 0", "t.yml:1: version: must be 1, got 0"},

		{"log.level", "log:\n  level: verbose", `t.yml:2: log.level: "verbose" is not one of debug, info, warn, error`},
		{"log.level null", "log:\n  level:", `t.yml:2: log.level: "" is not one of debug, info, warn, error`},
		{"log.level is case-sensitive", "log: {level: INFO}", `t.yml:1: log.level: "INFO" is not one of debug, info, warn, error`},
		{"log.format", "log: {format: xml}", `t.yml:1: log.format: "xml" is not one of text, json`},

		{"http.addr port only", `http: {addr: ":0"}`, ""},
		{"http.addr IPv6", `http: {addr: "[::1]:5080"}`, ""},
		{"http.addr no port", "http: {addr: localhost}", `t.yml:1: http.addr: "localhost" is not host:port, like ":5080"`},
		{"http.addr port not a number", "http: {addr: 'localhost:http'}", `t.yml:1: http.addr: "localhost:http" is not host:port, like ":5080"`},
		{"http.addr port too big", `http: {addr: ":65536"}`, `t.yml:1: http.addr: ":65536" is not host:port, like ":5080"`},
		{"http.shutdowngrace", "http: {shutdowngrace: 0s}", "t.yml:1: http.shutdowngrace: must be more than 0, got 0s"},
		{"http.tls both", "http:\n  tls:\n    certfile: testdata/good/server.pem\n    keyfile: testdata/good/server-key.pem", ""},
		{"http.tls certfile alone", "http:\n  tls:\n    certfile: testdata/good/server.pem", "t.yml:3: http.tls.keyfile: must be set with http.tls.certfile"},
		{"http.tls keyfile alone", "http:\n  tls:\n    keyfile: testdata/good/server-key.pem", "t.yml:3: http.tls.certfile: must be set with http.tls.keyfile"},
		{"http.tls files that do not match", "http:\n  tls:\n    certfile: testdata/good/ca.pem\n    keyfile: testdata/good/server-key.pem",
			"t.yml:3: http.tls.certfile: cannot load it with http.tls.keyfile: tls: private key does not match public key"},
		{"http.tls missing file", "http:\n  tls:\n    certfile: testdata/good/nope.pem\n    keyfile: testdata/good/server-key.pem",
			"t.yml:3: http.tls.certfile: cannot load it with http.tls.keyfile: open testdata/good/nope.pem: no such file or directory"},

		{"receiver.maxbodybytes", "receiver: {maxbodybytes: 0}", "t.yml:1: receiver.maxbodybytes: must be at least 1, got 0"},

		{"store.driver", "store: {driver: mysql}", `t.yml:1: store.driver: "mysql" is not one of embedded, redis`},
		{"store.embedded.path", "store:\n  embedded:\n    path: ''", "t.yml:3: store.embedded.path: must not be empty"},
		{"store.embedded.sync", "store:\n  embedded:\n    sync: off", `t.yml:3: store.embedded.sync: "off" is not one of full, normal`},
		{"store.redis.addr URL", "store: {redis: {addr: 'redis://:pw@redis.example.com:6379/1'}}", ""},
		{"store.redis.addr TLS URL", "store: {redis: {addr: 'rediss://redis.example.com'}}", ""},
		{"store.redis.addr other scheme", "store: {redis: {addr: 'http://redis.example.com'}}",
			"t.yml:1: store.redis.addr: must be host:port or a redis:// or rediss:// URL"},
		{"store.redis.addr bad db in URL", "store: {redis: {addr: 'redis://redis.example.com/x'}}",
			`t.yml:1: store.redis.addr: is not a valid Redis URL: redis: invalid database number: "x"`},
		{"store.redis.addr no port", "store: {redis: {addr: redis.example.com}}",
			`t.yml:1: store.redis.addr: "redis.example.com" is not host:port, like "127.0.0.1:6379"`},
		{"store.redis.db", "store: {redis: {db: -1}}", "t.yml:1: store.redis.db: must be at least 0, got -1"},
		{"store.redis.prefix", "store: {redis: {prefix: ''}}", "t.yml:1: store.redis.prefix: must not be empty"},
		{"store.redis.cafile", "store: {redis: {cafile: testdata/good/ca.pem}}", ""},
		{"store.redis.cafile missing", "store: {redis: {cafile: testdata/nope.pem}}",
			"t.yml:1: store.redis.cafile: cannot read it: open testdata/nope.pem: no such file or directory"},
		{"store.redis.cafile not PEM", "store: {redis: {cafile: '" + notPEM + "'}}", `t.yml:1: store.redis.cafile: "` + notPEM + `" holds no PEM certificate`},
		{"store.dedupettl", "store: {dedupettl: -1h}", "t.yml:1: store.dedupettl: must be more than 0, got -1h0m0s"},

		{"delivery.workers", "delivery: {workers: 0}", "t.yml:1: delivery.workers: must be at least 1, got 0"},
		{"delivery.perwebhook", "delivery:\n  perwebhook: 0", "t.yml:2: delivery.perwebhook: must be at least 1, got 0"},
		{"delivery.timeout", "delivery: {timeout: 0}", "t.yml:1: delivery.timeout: must be more than 0, got 0s"},
		{"delivery.lease equal to timeout", "delivery:\n  timeout: 1m\n  lease: 60s", "t.yml:3: delivery.lease: must be longer than delivery.timeout (1m0s), got 1m0s"},
		{"delivery.lease alone", "delivery:\n  lease: 5s", "t.yml:2: delivery.lease: must be longer than delivery.timeout (10s), got 5s"},
		{"delivery.lease default, timeout in file", "delivery:\n  timeout: 5m", "t.yml:2: delivery.lease: must be longer than delivery.timeout (5m0s), got 1m0s"},
		{"delivery.retry.initial", "delivery: {retry: {initial: 0s}}", "t.yml:1: delivery.retry.initial: must be more than 0, got 0s"},
		{"delivery.retry.max equal to initial", "delivery: {retry: {initial: 1m, max: 1m}}", ""},
		{"delivery.retry.max below initial", "delivery:\n  retry:\n    max: 500ms", "t.yml:3: delivery.retry.max: must be at least delivery.retry.initial (1s), got 500ms"},
		{"delivery.retry.maxattempts", "delivery: {retry: {maxattempts: 0}}", "t.yml:1: delivery.retry.maxattempts: must be at least 1, got 0"},
		{"delivery.retry.maxage", "delivery: {retry: {maxage: 0s}}", "t.yml:1: delivery.retry.maxage: must be more than 0, got 0s"},
		{"delivery.denynetworks", "delivery:\n  denynetworks:\n    - 10.0.0.0/8\n    - ::1", `t.yml:4: delivery.denynetworks[1]: "::1" is not a network in CIDR form, like "10.0.0.0/8" or "fd00::/8"`},
		{"delivery.tls.cafile", "delivery: {tls: {cafile: testdata/good/ca.pem}}", ""},
		{"delivery.tls.cafile missing", "delivery: {tls: {cafile: testdata/nope.pem}}",
			"t.yml:1: delivery.tls.cafile: cannot read it: open testdata/nope.pem: no such file or directory"},

		{"history.perwebhook", "history: {perwebhook: 0}", "t.yml:1: history.perwebhook: must be at least 1, got 0"},
		{"history.deadletters", "history: {deadletters: -5}", "t.yml:1: history.deadletters: must be at least 1, got -5"},

		{"webhook field on its line", "webhooks:\n  - name: hook01\n    uri: http://h.example.com\n    format: xml",
			`t.yml:4: webhooks[0].format: "xml" is not one of acr, cloudevents, envelope`},
		{"webhook field missing: the item's line", "webhooks:\n  - uri: http://h.example.com",
			`t.yml:2: webhooks[0].name: "" must be 5 to 50 lowercase letters and digits`},
		{"webhook null item", "webhooks:\n  -\n", `t.yml:2: webhooks[0].name: "" must be 5 to 50 lowercase letters and digits`},
		{"webhook names unique", "webhooks:\n  - {name: hook01, uri: 'http://a.example.com'}\n  - {name: hook01, uri: 'http://b.example.com'}",
			`t.yml:3: webhooks[1].name: "hook01" is already used by webhooks[0]`},

		{"every error, in line order", "delivery:\n  workers: 0\nversion: 3\nhistory: {perwebhook: 0, deadletters: 0}",
			"t.yml:2: delivery.workers: must be at least 1, got 0\n" +
				"t.yml:3: version: must be 1, got 3\n" +
				"t.yml:4: history.perwebhook: must be at least 1, got 0\n" +
				"t.yml:4: history.deadletters: must be at least 1, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data+"\n"), "t.yml", testEnv)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) errors (-want +got):\n%s", tc.data, diff)
			}
		})
	}
}

func TestValidateInMemory(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	c := Default()
	c.Delivery.Workers = 0
	c.Delivery.Lease = 5 * time.Second
	c.Webhooks = []*rule.Webhook{{Name: "hook01", URI: "ftp://x", Actions: []event.Action{event.Push}, Status: rule.Enabled, Format: rule.ACR}}
	want := "delivery.workers: must be at least 1, got 0\n" +
		"delivery.lease: must be longer than delivery.timeout (10s), got 5s\n" +
		`webhooks[0].uri: "ftp://x" must be an absolute http or https URL`
	err := c.Validate()
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want\n%s", err, want)
	}
}
