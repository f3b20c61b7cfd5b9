package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

const createExample = `  regwebhook webhook create --name myacrwebhook01 --uri http://ci.example.com/hooks/registry \
    --actions push delete --headers "Authorization=Bearer s3cret" X-Team=ci --scope "team/app:*"`

const updateExample = `  regwebhook webhook update --name myacrwebhook01 --scope "team/*:v1.*" --status disabled
  regwebhook webhook update --name myacrwebhook01 --headers ""      # clear the headers`

// webhookFlags are the fields of a webhook as create and update take them.
type webhookFlags struct {
	name     string
	uri      string
	actions  *listValue
	headers  *listValue
	scope    string
	status   *enumValue
	format   *enumValue
	secret   string
	generate bool
	insecure bool
	output   *enumValue
}

func addWebhookFlags(fs *pflag.FlagSet) *webhookFlags {
	f := &webhookFlags{
		actions: &listValue{split: splitActions},
		headers: &listValue{split: splitHeaders},
		status:  newEnum("", string(rule.Enabled), string(rule.Disabled)),
		format:  newEnum("", string(rule.ACR), string(rule.CloudEvents), string(rule.Envelope)),
	}
	fs.StringVarP(&f.name, "name", "n", "", "the webhook's name: 5 to 50 lowercase letters and digits")
	fs.StringVar(&f.uri, "uri", "", "the service URI that receives the POSTs")
	fs.Var(f.actions, "actions", "actions that trigger it: push delete pull (default push delete)")
	fs.Var(f.headers, "headers", `custom headers KEY=VALUE ... (split at the first "="); "" clears them`)
	fs.StringVar(&f.scope, "scope", "", `repository:tag the webhook is for, globs * and ? allowed (e.g. "team/app:*"); "" is every event`)
	fs.Var(f.status, "status", "enabled (default) or disabled: a disabled webhook gets no new deliveries")
	fs.Var(f.format, "format", "payload format: acr (default), cloudevents or envelope")
	fs.StringVar(&f.secret, "secret", "", `signing secret, whsec_ and base64 of 24-64 bytes (two, space-separated, while rotating); "" removes it`)
	fs.BoolVar(&f.generate, "generate-secret", false, "sign with a new random secret, printed once in the output")
	fs.BoolVar(&f.insecure, "insecure-skip-verify", false, "skip TLS verification of the service URI")
	f.output = addOutput(fs, outputJSON)
	return f
}

// splitActions reads --actions values: words, perhaps comma-separated,
// each push, delete or pull.
func splitActions(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		switch event.Action(a) {
		case "":
		case event.Push, event.Delete, event.Pull:
			out = append(out, a)
		default:
			return nil, fmt.Errorf("%q is not push, delete or pull", a)
		}
	}
	return out, nil
}

// headerStart is what a comma must be followed by to separate two headers
// in one --headers value: a header name and "=". Any other comma belongs
// to a value ("Accept=text/plain, application/json" is one header).
var headerStart = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+=")

// splitHeaders reads --headers values: KEY=VALUE, or several separated by
// commas.
func splitHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		if len(out) > 0 && !headerStart.MatchString(part) {
			out[len(out)-1] += "," + part
			continue
		}
		out = append(out, part)
	}
	for _, h := range out {
		if k, _, ok := strings.Cut(h, "="); !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", h)
		}
	}
	return out, nil
}

// body is the JSON object of the fields given on the command line, for
// POST (create) or PATCH (update): a field whose flag is not given is left
// out, so that the API keeps it or gives it its default. secret is the
// secret generated for --generate-secret.
func (f *webhookFlags) body(cmd *cobra.Command, secret string) (map[string]any, error) {
	fs := cmd.Flags()
	b := map[string]any{}
	if fs.Changed("uri") {
		b["uri"] = f.uri
	}
	if fs.Changed("actions") {
		if len(f.actions.values) == 0 {
			return nil, usageErrorf(cmd, "--actions needs at least one of push, delete, pull")
		}
		b["actions"] = f.actions.values
	}
	if fs.Changed("headers") {
		h := map[string]string{}
		seen := map[string]string{}
		for _, kv := range f.headers.values {
			k, v, _ := strings.Cut(kv, "=")
			canon := http.CanonicalHeaderKey(k)
			if prev, dup := seen[canon]; dup {
				return nil, usageErrorf(cmd, "--headers gives %q twice (as %q and %q)", canon, prev, k)
			}
			seen[canon] = k
			h[k] = v
		}
		b["headers"] = h
	}
	if fs.Changed("scope") {
		b["scope"] = f.scope
	}
	if fs.Changed("status") {
		b["status"] = f.status.value
	}
	if fs.Changed("format") {
		b["format"] = f.format.value
	}
	switch {
	case fs.Changed("secret") && f.generate:
		return nil, usageErrorf(cmd, "give --secret or --generate-secret, not both")
	case f.generate:
		b["secret"] = secret
	case fs.Changed("secret"):
		b["secret"] = f.secret
	}
	if fs.Changed("insecure-skip-verify") {
		b["insecureSkipVerify"] = f.insecure
	}
	return b, nil
}

// newSecret is a new signing secret: whsec_ and the base64 of 32 random
// bytes.
func newSecret() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate a secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), nil
}

func newWebhookCreateCmd(r *remote) *cobra.Command {
	var f *webhookFlags
	cmd := azFlags(&cobra.Command{
		Use: "create --name N --uri U [--actions push delete pull] [--headers K=V ...] [--scope S] [--status enabled|disabled]" +
			" [--format acr|cloudevents|envelope] [--secret S | --generate-secret] [--insecure-skip-verify]",
		Short:   "Create a webhook",
		Long:    "Create a webhook. It prints the webhook made, its header values and secret masked, except a secret made by --generate-secret: that one is shown, this once (get-config shows it again).",
		Example: createExample,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, f.name); err != nil {
				return err
			}
			if !cmd.Flags().Changed("uri") {
				return usageErrorf(cmd, "--uri is required")
			}
			return edit(cmd, r, f, http.MethodPost, api.Prefix+"/webhooks")
		},
	})
	f = addWebhookFlags(cmd.Flags())
	return cmd
}

func newWebhookUpdateCmd(r *remote) *cobra.Command {
	var f *webhookFlags
	cmd := azFlags(&cobra.Command{
		Use: "update --name N [--uri U] [--actions push delete pull] [--headers K=V ...] [--scope S] [--status enabled|disabled]" +
			" [--format acr|cloudevents|envelope] [--secret S | --generate-secret] [--insecure-skip-verify[=false]]",
		Short:   "Change the fields given of a webhook",
		Long:    "Change the fields of a webhook whose flags are given; the others stay. --headers replaces every header; --headers \"\" removes them, --secret \"\" the secret.",
		Example: updateExample,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, f.name); err != nil {
				return err
			}
			return edit(cmd, r, f, http.MethodPatch, hookPath(f.name))
		},
	})
	f = addWebhookFlags(cmd.Flags())
	return cmd
}

// edit sends the fields given to the API (create or update) and prints the
// webhook it answers.
func edit(cmd *cobra.Command, r *remote, f *webhookFlags, method, path string) error {
	var secret string
	if f.generate {
		var err error
		if secret, err = newSecret(); err != nil {
			return err
		}
	}
	body, err := f.body(cmd, secret)
	if err != nil {
		return err
	}
	if method == http.MethodPatch && len(body) == 0 {
		return usageErrorf(cmd, "nothing to change: give at least one of --uri, --actions, --headers, --scope, --status, --format, --secret, --generate-secret, --insecure-skip-verify")
	}
	if method == http.MethodPost {
		body["name"] = f.name
	}
	c, err := r.client(cmd)
	if err != nil {
		return err
	}
	var hook api.Webhook
	raw, err := c.do(cmd.Context(), method, path, body, &hook)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.output.value == outputTable {
		if err := printWebhooks(out, []api.Webhook{hook}); err != nil {
			return err
		}
		if secret != "" {
			_, err = fmt.Fprintf(out, "\nsecret: %s\n", secret)
		}
		return err
	}
	if secret != "" {
		// The one time the secret is shown: in place of the mask.
		hook.Secret = secret
		if raw, err = json.Marshal(hook); err != nil {
			return fmt.Errorf("encode webhook %q: %w", hook.Name, err)
		}
	}
	return printJSON(out, raw)
}

func newWebhookDeleteCmd(r *remote) *cobra.Command {
	var name string
	cmd := azFlags(&cobra.Command{
		Use:     "delete --name N",
		Short:   "Delete a webhook, with its queued deliveries, dead letters and history",
		Example: "  regwebhook webhook delete --name myacrwebhook01",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			_, err = c.call(cmd.Context(), http.MethodDelete, hookPath(name), nil)
			return err
		},
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "the webhook's name")
	return cmd
}
