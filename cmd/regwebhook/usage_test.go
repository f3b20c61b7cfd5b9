package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Exit status 0 on success, 2 on a command line that is wrong — unknown
// command, wrong argument count, bad flag — whatever the command, with a
// one-line message that shows the usage.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name             string
		args             []string
		code             int
		wantOut, wantErr string
	}{
		{"version", []string{"version"}, 0, "regwebhook dev\n", ""},
		{"version with an argument", []string{"version", "extra"}, 2, "",
			`regwebhook: unknown command "extra" for "regwebhook version"; usage: regwebhook version` + "\n"},
		{"version with an unknown flag", []string{"version", "--nope"}, 2, "",
			"regwebhook: unknown flag: --nope; usage: regwebhook version\n"},
		{"unknown command", []string{"bogus"}, 2, "",
			`regwebhook: unknown command "bogus" for "regwebhook"; usage: regwebhook COMMAND` + "\n"},
		{"unknown command with arguments", []string{"bogus", "--config", "x.yml"}, 2, "",
			"regwebhook: unknown flag: --config; usage: regwebhook COMMAND\n"},
		{"unknown flag before any command", []string{"--nope", "version"}, 2, "",
			"regwebhook: unknown flag: --nope; usage: regwebhook COMMAND\n"},
		{"serve with an argument", []string{"serve", "extra"}, 2, "",
			`regwebhook: unknown command "extra" for "regwebhook serve"; usage: regwebhook serve [--config FILE]` + "\n"},
		{"serve with an unknown flag", []string{"serve", "--nope"}, 2, "",
			"regwebhook: unknown flag: --nope; usage: regwebhook serve [--config FILE]\n"},
		{"serve --config without a file", []string{"serve", "--config"}, 2, "",
			"regwebhook: flag needs an argument: --config; usage: regwebhook serve [--config FILE]\n"},
		{"config check without a file", []string{"config", "check"}, 2, "",
			"regwebhook: accepts 1 arg(s), received 0; usage: regwebhook config check FILE\n"},
		{"config check with an unknown flag", []string{"config", "check", "--strict", "x.yml"}, 2, "",
			"regwebhook: unknown flag: --strict; usage: regwebhook config check FILE\n"},
		{"completion without a shell", []string{"completion"}, 2, "",
			"regwebhook: completion needs a subcommand: bash, fish, powershell, zsh\n"},
		{"completion of an unknown shell", []string{"completion", "tcsh"}, 2, "",
			`regwebhook: unknown command "tcsh" for "regwebhook completion"; usage: regwebhook completion` + "\n"},
		{"completion with an argument", []string{"completion", "bash", "extra"}, 2, "",
			`regwebhook: unknown command "extra" for "regwebhook completion bash"; usage: regwebhook completion bash` + "\n"},
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

// Help is not an error: --help on any command, and no command at all, print
// the help on stdout and exit 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"serve", "--help"}, {"help", "serve"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Errorf("run(%q) = %d, want 0; stderr: %s", args, code, &stderr)
		}
		if !bytes.Contains(stdout.Bytes(), []byte("Usage:\n")) {
			t.Errorf("run(%q) printed no help:\n%s", args, &stdout)
		}
	}
}
