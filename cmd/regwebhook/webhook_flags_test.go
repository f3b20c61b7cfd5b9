package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// request is what the CLI sent to the API.
type request struct {
	Method, Path, ContentType, Authorization string
	Body                                     map[string]any
}

// recorder is an HTTP server that records the requests the CLI sends and
// answers each with a webhook, as create and update do: a stand-in for the
// API where what matters is the request the command line makes.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		b, err := io.ReadAll(q.Body)
		if err != nil {
			t.Errorf("read the CLI's request body: %v", err)
		}
		got := request{Method: q.Method, Path: q.URL.RequestURI(), ContentType: q.Header.Get("Content-Type"),
			Authorization: q.Header.Get("Authorization")}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &got.Body); err != nil {
				t.Errorf("the CLI sent a body that is not a JSON object: %v: %s", err, b)
			}
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, got)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"name":"hookname","uri":"http://ci.example.com/…","actions":["push"],"status":"enabled","scope":"","format":"acr","insecureSkipVerify":false,"source":"api"}`)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// take returns the requests recorded since the last take.
func (r *recorder) take() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// Flags become the request the API gets: list flags in az's space-separated
// form, as a comma list or repeated; update sends the fields given and no
// other; "" clears headers, scope and secret.
func TestWebhookFlagsMakeTheRequest(t *testing.T) {
	rec := newRecorder(t)
	t.Setenv(envServer, rec.srv.URL)
	t.Setenv(envToken, "t0ken")
	update := func(args ...string) []string {
		return append([]string{"webhook", "update", "--name", "hookname"}, args...)
	}
	const patch, hookPath = http.MethodPatch, "/api/v1/webhooks/hookname"
	for _, tc := range []struct {
		name string
		args []string
		want request
	}{
		{"create: the fields given, name in the body", []string{"webhook", "create", "--name", "hookname", "--uri", "http://ci.example.com/x"},
			request{Method: http.MethodPost, Path: "/api/v1/webhooks", Body: map[string]any{"name": "hookname", "uri": "http://ci.example.com/x"}}},
		{"create: every field", []string{"webhook", "create", "-n", "hookname", "--uri", "http://ci.example.com/x", "--actions", "push", "pull",
			"--headers", "A=1", "B=2", "--scope", "team/*:v1.*", "--status", "disabled", "--format", "cloudevents",
			"--secret", "whsec_a", "--insecure-skip-verify"},
			request{Method: http.MethodPost, Path: "/api/v1/webhooks", Body: map[string]any{"name": "hookname", "uri": "http://ci.example.com/x",
				"actions": []any{"push", "pull"}, "headers": map[string]any{"A": "1", "B": "2"}, "scope": "team/*:v1.*",
				"status": "disabled", "format": "cloudevents", "secret": "whsec_a", "insecureSkipVerify": true}}},
		{"actions space-separated", update("--actions", "push", "delete"),
			request{Body: map[string]any{"actions": []any{"push", "delete"}}}},
		{"actions comma-separated", update("--actions", "push,delete,pull"),
			request{Body: map[string]any{"actions": []any{"push", "delete", "pull"}}}},
		{"actions repeated", update("--actions", "push", "--actions=pull"),
			request{Body: map[string]any{"actions": []any{"push", "pull"}}}},
		{"headers space-separated, ended by a flag", update("--headers", "A=1", "B=2", "--scope", "team/app"),
			request{Body: map[string]any{"headers": map[string]any{"A": "1", "B": "2"}, "scope": "team/app"}}},
		{"headers comma-separated", update("--headers", "A=1,B=2"),
			request{Body: map[string]any{"headers": map[string]any{"A": "1", "B": "2"}}}},
		{"headers repeated", update("--headers=A=1", "--headers", "B=2"),
			request{Body: map[string]any{"headers": map[string]any{"A": "1", "B": "2"}}}},
		{"header split at the first =, a comma inside a value", update("--headers", "Accept=text/plain, application/json;q=0.9", "X-Sig=a=b,c"),
			request{Body: map[string]any{"headers": map[string]any{"Accept": "text/plain, application/json;q=0.9", "X-Sig": "a=b,c"}}}},
		{"header with an empty value", update("--headers", "X-Empty="),
			request{Body: map[string]any{"headers": map[string]any{"X-Empty": ""}}}},
		{`headers "" clears them`, update("--headers", ""),
			request{Body: map[string]any{"headers": map[string]any{}}}},
		{"a flag's value is not a list value", update("--scope", "team/app", "--headers", "A=1"),
			request{Body: map[string]any{"headers": map[string]any{"A": "1"}, "scope": "team/app"}}},
		{"after --, nothing is a flag", update("--status", "enabled", "--"),
			request{Body: map[string]any{"status": "enabled"}}},
		{"status alone", update("--status", "disabled"),
			request{Body: map[string]any{"status": "disabled"}}},
		{`scope "" is every event`, update("--scope", ""),
			request{Body: map[string]any{"scope": ""}}},
		{`secret "" removes it`, update("--secret", ""),
			request{Body: map[string]any{"secret": ""}}},
		{"insecure-skip-verify off", update("--insecure-skip-verify=false"),
			request{Body: map[string]any{"insecureSkipVerify": false}}},
		{"uri and format", update("--uri", "https://hooks.example.com/a", "--format", "envelope"),
			request{Body: map[string]any{"uri": "https://hooks.example.com/a", "format": "envelope"}}},
		{"server and token flags over the environment", append(update("--status", "enabled"), "--token", "other"),
			request{Authorization: "Bearer other", Body: map[string]any{"status": "enabled"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cliOK(t, tc.args...)
			want := tc.want
			if want.Method == "" {
				want.Method, want.Path = patch, hookPath
			}
			if want.Authorization == "" {
				want.Authorization = "Bearer t0ken"
			}
			want.ContentType = "application/json"
			if diff := cmp.Diff([]request{want}, rec.take()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// --generate-secret sends a new secret, whsec_ and 32 random bytes, and
// prints it in place of the mask: the one time it is shown.
func TestGenerateSecret(t *testing.T) {
	rec := newRecorder(t)
	t.Setenv(envServer, rec.srv.URL)
	seen := map[string]bool{}
	for _, output := range []string{"json", "table"} {
		out := cliOK(t, "webhook", "update", "--name", "hookname", "--generate-secret", "--output", output)
		reqs := rec.take()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		secret, _ := reqs[0].Body["secret"].(string)
		if key, err := decodeSecret(secret); err != nil || !strings.HasPrefix(secret, "whsec_") || len(key) != 32 {
			t.Errorf("sent secret %q (%v), want whsec_ and the base64 of 32 bytes", secret, err)
		}
		if seen[secret] {
			t.Errorf("the same secret %q twice", secret)
		}
		seen[secret] = true
		var wantLine string
		if output == "json" {
			wantLine = `"secret": "` + secret + `"`
		} else {
			wantLine = "\nsecret: " + secret + "\n"
		}
		if !strings.Contains(out, wantLine) {
			t.Errorf("--output %s printed no %q:\n%s", output, wantLine, out)
		}
	}
}

// A command line that is wrong exits 2 with one line on stderr that says
// what is wrong and shows the usage; nothing is sent.
func TestWebhookUsage(t *testing.T) {
	rec := newRecorder(t)
	t.Setenv(envServer, rec.srv.URL)
	const (
		createUse = "regwebhook webhook create --name N --uri U [--actions push delete pull] [--headers K=V ...] [--scope S]" +
			" [--status enabled|disabled] [--format acr|cloudevents|envelope] [--secret S | --generate-secret] [--insecure-skip-verify]"
		updateUse = "regwebhook webhook update --name N [--uri U] [--actions push delete pull] [--headers K=V ...] [--scope S]" +
			" [--status enabled|disabled] [--format acr|cloudevents|envelope] [--secret S | --generate-secret] [--insecure-skip-verify[=false]]"
	)
	create := []string{"webhook", "create", "--name", "hookname", "--uri", "http://ci.example.com/"}
	with := func(base []string, args ...string) []string { return append(append([]string{}, base...), args...) }
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"webhook"}, "webhook needs a subcommand: create, delete, get-config, list, list-deadletters, list-events, ping, purge-deadletters, redeliver, show, update"},
		{[]string{"webhook", "bogus"}, `unknown command "bogus" for "regwebhook webhook"; usage: regwebhook webhook COMMAND`},
		{[]string{"webhook", "create", "--uri", "http://ci.example.com/"}, "--name is required; usage: " + createUse},
		{[]string{"webhook", "create", "--name", "hookname"}, "--uri is required; usage: " + createUse},
		{with(create, "--uri"), "flag needs an argument: --uri; usage: " + createUse},
		{with(create, "--bogus"), "unknown flag: --bogus; usage: " + createUse},
		{with(create, "extra"), `unknown command "extra" for "regwebhook webhook create"; usage: ` + createUse},
		{with(create, "--status", "paused"), `invalid argument "paused" for "--status" flag: must be enabled or disabled; usage: ` + createUse},
		{with(create, "--format", "xml"), `invalid argument "xml" for "--format" flag: must be acr, cloudevents or envelope; usage: ` + createUse},
		{with(create, "--actions", "push", "tag"), `invalid argument "tag" for "--actions" flag: "tag" is not push, delete or pull; usage: ` + createUse},
		{with(create, "--actions", ""), "--actions needs at least one of push, delete, pull; usage: " + createUse},
		{with(create, "--headers", "A=1", "novalue"), `invalid argument "novalue" for "--headers" flag: "novalue" is not KEY=VALUE; usage: ` + createUse},
		{with(create, "--headers", "=1"), `invalid argument "=1" for "--headers" flag: "=1" is not KEY=VALUE; usage: ` + createUse},
		{with(create, "--headers", "x-team=a", "X-Team=b"), `--headers gives "X-Team" twice (as "x-team" and "X-Team"); usage: ` + createUse},
		{with(create, "--secret", "whsec_a", "--generate-secret"), "give --secret or --generate-secret, not both; usage: " + createUse},
		{with(create, "--output", "yaml"), `invalid argument "yaml" for "-o, --output" flag: must be table or json; usage: ` + createUse},
		{with(create, "--server", "ftp://x"), `--server "ftp://x" must be http://HOST:PORT or https://HOST:PORT; usage: ` + createUse},
		{[]string{"webhook", "update", "--name", "hookname"}, "nothing to change: give at least one of --uri, --actions, --headers, --scope," +
			" --status, --format, --secret, --generate-secret, --insecure-skip-verify; usage: " + updateUse},
		{[]string{"webhook", "update", "--scope", "x"}, "--name is required; usage: " + updateUse},
		{[]string{"webhook", "delete"}, "--name is required; usage: regwebhook webhook delete --name N"},
		{[]string{"webhook", "list", "extra"}, `unknown command "extra" for "regwebhook webhook list"; usage: regwebhook webhook list [--output table|json]`},
		{[]string{"webhook", "list", "--actions", "push"}, "unknown flag: --actions; usage: regwebhook webhook list [--output table|json]"},
		{[]string{"webhook", "show"}, "--name is required; usage: regwebhook webhook show --name N"},
		{[]string{"webhook", "get-config", "hookname"}, `unknown command "hookname" for "regwebhook webhook get-config"; usage: regwebhook webhook get-config --name N`},
		{[]string{"webhook", "ping"}, "--name is required; usage: regwebhook webhook ping --name N"},
		{[]string{"webhook", "list-events", "--name", "hookname", "--top", "0"}, "--top must be from 1 to 100000; usage: regwebhook webhook list-events --name N [--top K]"},
		{[]string{"webhook", "list-events", "--name", "hookname", "--top", "ten"}, `invalid argument "ten" for "--top" flag: strconv.ParseInt: parsing "ten": invalid syntax; usage: regwebhook webhook list-events --name N [--top K]`},
		{[]string{"webhook", "redeliver", "--name", "hookname"}, "give --id DELIVERY or --all-deadletters; usage: regwebhook webhook redeliver --name N (--id DELIVERY | --all-deadletters)"},
		{[]string{"webhook", "redeliver", "--name", "hookname", "--id", "x", "--all-deadletters"}, "give --id or --all-deadletters, not both; usage: regwebhook webhook redeliver --name N (--id DELIVERY | --all-deadletters)"},
		{[]string{"webhook", "list-deadletters", "--name"}, "flag needs an argument: --name; usage: regwebhook webhook list-deadletters --name N"},
		{[]string{"webhook", "purge-deadletters"}, "--name is required; usage: regwebhook webhook purge-deadletters --name N"},
		{[]string{"health", "extra"}, `unknown command "extra" for "regwebhook health"; usage: regwebhook health [--server URL]`},
		{[]string{"health", "--server", "ftp://x"}, `--server "ftp://x" must be http://HOST:PORT or https://HOST:PORT; usage: regwebhook health [--server URL]`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := cliFails(t, 2, "regwebhook: "+tc.wantErr+"\n", tc.args...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
			if reqs := rec.take(); len(reqs) > 0 {
				t.Errorf("sent %+v", reqs)
			}
		})
	}
}

// --help works on the webhook commands as on the others: help on stdout,
// exit 0.
func TestWebhookHelp(t *testing.T) {
	for _, args := range [][]string{{"webhook", "--help"}, {"webhook", "create", "--help"}, {"webhook", "list", "-h"},
		{"help", "webhook", "list-events"}, {"health", "--help"}} {
		out := cliOK(t, args...)
		if !strings.Contains(out, "Usage:\n") {
			t.Errorf("%q printed no help:\n%s", args, out)
		}
	}
}
