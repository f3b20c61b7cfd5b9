package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err with the errors they give now")

func TestLoadFull(t *testing.T) {
	const file = "testdata/good/full.yml"
	getenv := env(map[string]string{
		"RECEIVER_TOKEN": "recv # not: yaml",
		"REDIS_PASSWORD": "",
		"CI_TOKEN":       "t0k3n",
	})
	got, err := Load(file, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Version: 1,
		Log:     Log{Level: "debug", Format: "json"},
		HTTP: HTTP{
			Addr:          "127.0.0.1:8443",
			ShutdownGrace: 5 * time.Second,
			TLS:           ServerTLS{CertFile: "testdata/good/server.pem", KeyFile: "testdata/good/server-key.pem"},
		},
		Receiver: Receiver{Token: "recv # not: yaml", MaxBodyBytes: 2 << 20},
		Admin:    Admin{Token: "fallback # not a comment"},
		Store: Store{
			Driver:   "redis",
			Embedded: Embedded{Path: "/var/lib/regwebhook", Sync: "normal"},
			Redis: Redis{
				Addr: "rediss://redis.example.com:6380/2", Password: "", DB: 3, Prefix: "rw:",
				Strict: true, TLS: true, CAFile: "testdata/good/ca.pem",
			},
			DedupeTTL: 48 * time.Hour,
		},
		Delivery: Delivery{
			Workers:      4,
			PerWebhook:   2,
			Timeout:      90 * time.Second,
			Lease:        5 * time.Minute,
			Retry:        Retry{Initial: 500 * time.Millisecond, Max: 10 * time.Minute, MaxAttempts: 3, MaxAge: 2 * time.Hour},
			DenyNetworks: []string{"10.0.0.0/8", "fd00::/8"},
			TLS:          ClientTLS{CAFile: "testdata/good/ca.pem"},
		},
		History: History{PerWebhook: 20, DeadLetters: 500},
		Webhooks: []*rule.Webhook{
			{
				Name:               "myacrwebhook01",
				URI:                "http://ci.example.com/hooks/registry",
				Headers:            map[string]string{"Authorization": "Bearer t0k3n", "X-Price": "$5 and $HOME stays"},
				Actions:            []event.Action{event.Push, event.Delete, event.Pull},
				Status:             rule.Disabled,
				Scope:              "team/app:*",
				Format:             rule.CloudEvents,
				Secret:             "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
				InsecureSkipVerify: true,
				Source:             rule.FromConfig,
			},
			{
				Name:    "minimal01",
				URI:     "https://hooks.example.com/x",
				Actions: []event.Action{event.Push, event.Delete},
				Status:  rule.Enabled,
				Format:  rule.ACR,
				Source:  rule.FromConfig,
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(%s) (-want +got):\n%s", file, diff)
	}
	checkEveryKey(t, file, getenv)
}

// checkEveryKey fails unless the file sets every key of Config, and every
// key of a webhook in at least one of its webhooks.
func checkEveryKey(t *testing.T, file string, getenv func(string) (string, bool)) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, lines, errs := parse(data, file, getenv)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var missing []string
	for _, k := range leafKeys(reflect.TypeFor[Config](), "") {
		if _, ok := lines[k]; !ok && k != "webhooks" {
			missing = append(missing, k)
		}
	}
	for _, k := range yamlKeys(reflect.TypeFor[rule.Webhook]()) {
		found := false
		for path := range lines {
			found = found || strings.HasPrefix(path, "webhooks[") && strings.HasSuffix(path, "]."+k)
		}
		if !found {
			missing = append(missing, "webhooks[]."+k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not set %s", file, strings.Join(missing, ", "))
	}
}

// leafKeys lists the full paths of the keys of struct type t that hold
// values rather than sections.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		switch k := yamlKey(f); {
		case k == "":
		case f.Type.Kind() == reflect.Struct:
			keys = append(keys, leafKeys(f.Type, prefix+k+".")...)
		default:
			keys = append(keys, prefix+k)
		}
	}
	return keys
}

func TestParseKeepsDefaults(t *testing.T) {
	for _, data := range []string{
		"",
		"# only a comment\n",
		"---\n",
		"~\n",
		"version: 1\n",
		"log:\ndelivery:\n  retry:\n", // empty sections
		"log: {}\n",
	} {
		got, err := Parse([]byte(data), "t.yml", testEnv)
		if err != nil {
			t.Errorf("Parse(%q): %v", data, err)
			continue
		}
		if diff := cmp.Diff(Default(), got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", data, diff)
		}
	}
}

func TestParseOverlay(t *testing.T) {
	getenv := env(map[string]string{"W": "4", "T": "a # b: c\nd", "YES": "true", "SECS": "30s"})
	hook := func(name string, actions ...event.Action) *rule.Webhook {
		return &rule.Webhook{Name: name, URI: "http://h.example.com/", Actions: actions,
			Status: rule.Enabled, Format: rule.ACR, Source: rule.FromConfig}
	}
	for _, tc := range []struct {
		name, data string
		change     func(*Config)
	}{
		{"one key keeps its section's others", "delivery: {workers: 4}", func(c *Config) { c.Delivery.Workers = 4 }},
		{"a list replaces the default", "delivery: {denynetworks: [10.0.0.0/8]}", func(c *Config) { c.Delivery.DenyNetworks = []string{"10.0.0.0/8"} }},
		{"an empty list empties it", "delivery: {denynetworks: []}", func(c *Config) { c.Delivery.DenyNetworks = []string{} }},
		{"null empties a list", "delivery: {denynetworks: ~}", func(c *Config) { c.Delivery.DenyNetworks = nil }},
		{"a variable gives an integer", "delivery:\n  workers: ${W}", func(c *Config) { c.Delivery.Workers = 4 }},
		{"a quoted variable gives an integer", `delivery: {workers: "${W}"}`, func(c *Config) { c.Delivery.Workers = 4 }},
		{"a default gives an integer", "delivery:\n  perwebhook: ${UNSET:-3}", func(c *Config) { c.Delivery.PerWebhook = 3 }},
		{"a variable gives a bool", "store: {redis: {strict: '${YES}'}}", func(c *Config) { c.Store.Redis.Strict = true }},
		{"a variable gives a duration", "delivery: {timeout: '${SECS}'}", func(c *Config) { c.Delivery.Timeout = 30 * time.Second }},
		{"a variable's #, : and newline stay in the value", "receiver: {token: '${T}'}\nadmin: {token: x}",
			func(c *Config) { c.Receiver.Token = "a # b: c\nd"; c.Admin.Token = "x" }},
		{"a number is a string where a string is wanted", "admin: {token: 0x1F}", func(c *Config) { c.Admin.Token = "0x1F" }},
		{"anchors and merge keys", `
webhooks:
  - &base {name: first1, uri: "http://h.example.com/", actions: [push]}
  - <<: *base
    name: second2
    actions: [pull]
`, func(c *Config) { c.Webhooks = []*rule.Webhook{hook("first1", event.Push), hook("second2", event.Pull)} }},
		{"empty headers are none", "webhooks:\n  - {name: first1, uri: 'http://h.example.com/', actions: [push], headers: {}}",
			func(c *Config) { c.Webhooks = []*rule.Webhook{hook("first1", event.Push)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.data), "t.yml", getenv)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tc.change(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.data, diff)
			}
		})
	}
}

// TestBadFiles checks each testdata/bad/NAME.yml against the exact errors
// in NAME.err. Run with -update to rewrite the .err files, then review them.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file, testEnv)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) = %v, want config.Errors", file, err)
			}
			errFile := strings.TrimSuffix(file, ".yml") + ".err"
			if *update {
				if err := os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if diff := cmp.Diff(string(want), err.Error()+"\n"); diff != "" {
				t.Errorf("Load(%s) errors (-want +got):\n%s", file, diff)
			}
		})
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse([]byte("version: 1\ndelivery:\n  perwebhook: 0\n  workers: lots\n"), "rw.yml", testEnv)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("errors.As(%v, *Errors) = false", err)
	}
	want := Errors{
		{File: "rw.yml", Line: 3, Key: "delivery.perwebhook", Message: "must be at least 1, got 0"},
		{File: "rw.yml", Line: 4, Key: "delivery.workers", Message: `must be an integer, got "lots"`},
	}
	if diff := cmp.Diff(want, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), "rw.yml:3: delivery.perwebhook: must be at least 1, got 0\nrw.yml:4: delivery.workers: must be an integer, got \"lots\""; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"), testEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want fs.ErrNotExist", err)
	}
}

// TestExample checks the example config: valid, every key shown, each with
// its default, two webhooks.
func TestExample(t *testing.T) {
	const file = "../examples/regwebhook.yml"
	getenv := env(map[string]string{"CI_HOOK_TOKEN": "t0k3n"})
	got, err := Load(file, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Webhooks) != 2 {
		t.Errorf("%s has %d webhooks, want 2", file, len(got.Webhooks))
	}
	got.Webhooks = nil
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("%s differs from the defaults (-want +got):\n%s", file, diff)
	}
	checkEveryKey(t, file, getenv)
}

// TestSyntaxErrorLines checks that a syntax error names the line where yaml
// found the problem, or where the construct holding it starts.
func TestSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"a: {b: 1\n", "t.yml:2: syntax: did not find expected ',' or '}'"}, // found at the end
		{"a: {b: 1 c: 2}\n", "t.yml:1: syntax: did not find expected ',' or '}'"},
		{"version: 1\nlog:\n  level: info\n format: text\n", "t.yml:4: syntax: did not find expected key"},
		{"version: 1\nlog:\n  level: info\nadmin: {token: ${X:-}}\n", `t.yml:4: syntax: did not find expected ',' or '}' (inside {...} or [...], quote a value that holds ${...}: "${NAME}")`},
		{"version: 1\nlog:\n  level: info\n  format: \"text\nx: 1\n", "t.yml:4: syntax: found unexpected end of stream"},
		{"version: 1\nlog:\n\tlevel: info\n", "t.yml:3: syntax: found character that cannot start any token"},
		{"version: 1\nlog:\n  level: info\n  format: x: y\n", "t.yml:4: syntax: mapping values are not allowed in this context"},
		{"version: 1\nwebhooks:\n  - name: a\n   uri: b\n", "t.yml:3: syntax: did not find expected '-' indicator"},
		{"log: *nope\n", "t.yml: syntax: unknown anchor 'nope' referenced"},
	} {
		_, err := Parse([]byte(tc.data), "t.yml", testEnv)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) = %v, want %s", tc.data, err, tc.want)
		}
	}
}
