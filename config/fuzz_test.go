package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/config"
)

// FuzzParse parses any file with a fixed environment. Whatever it holds:
//   - Parse returns a config or a config.Errors, never panics;
//   - every line of the error starts with the file's name ("FILE:"), so
//     that no message (a key or a value quoted in it) can forge a line, and
//     each Error names the file;
//   - a config that parses passes Validate again, and its webhooks compile
//     into a rule.Set, as serve loads them.
func FuzzParse(f *testing.F) {
	const file = "fuzz.yml"
	seeds, err := filepath.Glob("testdata/*/*.yml")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "---", "--- \n...", "# nothing", "null", "~", "[]", "1", "version: 1", "version: 1\n---\nversion: 1",
		"{version: 1, log: {level: debug}}", "webhooks: []", "webhooks:\n  -\n", "webhooks: [~]",
		"webhooks:\n  - name: hookone1\n    uri: http://a.example.com/\n    headers: {\"X-A\": \"a\\r\\nb\"}\n",
		"webhooks:\n  - name: hookone1\n    uri: http://a.example.com/\n    headers: {\"Bad Name\": x, \"\": y}\n",
		"webhooks:\n  - &a {name: hookone1, uri: \"http://a.example.com/\"}\n  - *a\n",
		"base: &b {level: debug}\nlog:\n  <<: *b\n",
		"log: {<<: [{level: debug}, {format: json}]}",
		"\"a\\nb\": 1", "log:\n  \"x\\ny: z\": 1", "? [a]\n: 1", "!!binary aGk=: 1",
		"delivery: {workers: ${WORKERS:-4}, timeout: ${UNSET}}", "admin: {token: \"${SET}$${SET}$$\"}",
		"delivery: {retry: {initial: 1e400, maxattempts: 18446744073709551616}}",
		"delivery: {denynetworks: [\"::ffff:0:0/96\", 300.0.0.0/8]}",
		"store: {redis: {addr: \"redis://u:p@h:1/0\"}}", "store: {redis: {addr: \"redis://%zz\"}}",
		"\xef\xbb\xbfversion: 1", "version: \xff",
		strings.Repeat("[", 10000), strings.Repeat("- ", 1000) + "x",
	} {
		f.Add([]byte(s))
	}
	getenv := func(name string) (string, bool) {
		v, ok := map[string]string{"SET": "value", "EMPTY": "", "WORKERS": "7", "NL": "a\nb", "RECEIVER_TOKEN": "t",
			"REDIS_PASSWORD": "", "CI_TOKEN": "c"}[name]
		return v, ok
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// Validate reads the files a config names: not devices that never end.
		for _, dir := range []string{"/dev", "/proc", "/sys"} {
			if bytes.Contains(data, []byte(dir)) {
				t.Skip("names a device")
			}
		}
		cfg, err := config.Parse(data, file, getenv)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse(%q) = %v (%T), want a config.Errors", data, err, err)
			}
			for _, e := range errs {
				if e.File != file || e.Line < 0 {
					t.Errorf("Parse(%q): error %q names file %q line %d", data, e, e.File, e.Line)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, file+":") {
					t.Fatalf("Parse(%q): error line %q does not start with %q:\n%v", data, line, file+":", err)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse(%q) took a config that Validate refuses: %v", data, err)
		}
		for i, w := range cfg.Webhooks {
			if w.Source != rule.FromConfig {
				t.Errorf("webhooks[%d] has source %q", i, w.Source)
			}
			w.ID = w.Name // as webhooks.Load gives each one an id
		}
		if _, err := rule.NewSet(cfg.Webhooks); err != nil {
			t.Fatalf("Parse(%q) took webhooks that do not compile: %v", data, err)
		}
	})
}
