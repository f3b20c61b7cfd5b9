package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yml", "version: 1\nwebhooks:\n  - name: hook01\n    uri: http://ci.example.com/hooks\n")
	bad := write("bad.yml", `version: 1
delivery:
  perwebhook: 0
  perwebhok: 2
admin:
  token: ${REGWEBHOOK_TEST_NEVER_SET}
webhooks:
  - name: hook01
    uri: ci.example.com
`)
	missing := filepath.Join(dir, "missing.yml")
	const example = "../../examples/regwebhook.yml"
	t.Setenv("CI_HOOK_TOKEN", "t0k3n")

	for _, tc := range []struct {
		name             string
		args             []string
		code             int
		wantOut, wantErr string
	}{
		{"good file", []string{"config", "check", good}, 0, good + ": ok\n", ""},
		{"the example", []string{"config", "check", example}, 0, example + ": ok\n", ""},
		{"bad file: every problem, a line each", []string{"config", "check", bad}, 1, "",
			"regwebhook: " + bad + ":3: delivery.perwebhook: must be at least 1, got 0\n" +
				"regwebhook: " + bad + ":4: delivery.perwebhok: unknown key (known here: workers, perwebhook, timeout, lease, retry, denynetworks, tls)\n" +
				"regwebhook: " + bad + ":6: admin.token: environment variable REGWEBHOOK_TEST_NEVER_SET is not set (write ${REGWEBHOOK_TEST_NEVER_SET:-} to allow it unset)\n" +
				"regwebhook: " + bad + `:9: webhooks[0].uri: "ci.example.com" must be an absolute http or https URL` + "\n"},
		{"missing file", []string{"config", "check", missing}, 1, "",
			"regwebhook: read config file: open " + missing + ": no such file or directory\n"},
		{"no file", []string{"config", "check"}, 2, "",
			"regwebhook: accepts 1 arg(s), received 0; usage: regwebhook config check FILE\n"},
		{"two files", []string{"config", "check", good, good}, 2, "",
			"regwebhook: accepts 1 arg(s), received 2; usage: regwebhook config check FILE\n"},
		{"no subcommand", []string{"config"}, 2, "",
			"regwebhook: config needs a subcommand: regwebhook config check FILE\n"},
		{"unknown subcommand", []string{"config", "lint", good}, 2, "",
			`regwebhook: unknown command "lint" for "regwebhook config"; usage: regwebhook config` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("run(%q) = %d, want %d", tc.args, code, tc.code)
			}
			if diff := cmp.Diff(tc.wantOut, stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErr, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
