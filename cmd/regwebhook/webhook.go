package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const webhookLong = `Manage the webhooks of a running regwebhook through its API, as
az acr webhook does for a registry in Azure.

--server says where regwebhook listens (default $REGWEBHOOK_SERVER, else
http://127.0.0.1:5080); --token is its admin.token (default
$REGWEBHOOK_TOKEN). With no admin.token configured, regwebhook answers only
clients on its own machine.

List flags take several values as az's do: space-separated after the flag
(--actions push delete, --headers A=1 B=2), comma-separated (--actions
push,delete), or the flag repeated. The values end at the next argument
that starts with "-". Commands that print take --output table|json.`

// remote is where the webhook commands find regwebhook: the persistent
// flags of "webhook".
type remote struct {
	server string
	token  string
}

func newWebhookCmd() *cobra.Command {
	r := &remote{}
	cmd := &cobra.Command{
		Use:   "webhook COMMAND",
		Short: "Manage webhooks: create, update, list, ping, list-events, redeliver",
		Long:  webhookLong,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&r.server, "server", "", "regwebhook's URL (env "+envServer+"; default "+defaultServer+")")
	pf.StringVar(&r.token, "token", "", "regwebhook's admin.token (env "+envToken+")")
	cmd.AddCommand(
		newWebhookCreateCmd(r), newWebhookUpdateCmd(r), newWebhookDeleteCmd(r),
		newWebhookListCmd(r), newWebhookShowCmd(r), newWebhookGetConfigCmd(r),
		newWebhookPingCmd(r), newWebhookListEventsCmd(r),
		newWebhookRedeliverCmd(r), newWebhookListDeadLettersCmd(r), newWebhookPurgeDeadLettersCmd(r),
	)
	return cmd
}

// client is the API client for the flags and environment given. A --server
// that is not a URL is a usage error.
func (r *remote) client(cmd *cobra.Command) (*client, error) {
	server := r.server
	if !cmd.Flags().Changed("server") {
		server = os.Getenv(envServer)
	}
	if server == "" {
		server = defaultServer
	}
	u, err := parseServer(server)
	if err != nil {
		return nil, usageError{fmt.Errorf("%w; usage: %s", err, useLine(cmd))}
	}
	token := r.token
	if !cmd.Flags().Changed("token") {
		token = os.Getenv(envToken)
	}
	return &client{server: u, token: token, http: &http.Client{Timeout: clientTimeout}}, nil
}

// azFlags makes cmd read its flags as az does, list flags with
// space-separated values. pflag takes one value a flag, so cobra's parsing
// is turned off and the flags are parsed in PreRunE, once spreadLists has
// made "--actions push delete" into "--actions push --actions=delete". The
// webhook commands take no arguments, so a word after a list flag can only
// be one of its values. A bad flag or an argument is a usage error.
func azFlags(cmd *cobra.Command) *cobra.Command {
	cmd.DisableFlagParsing = true
	cmd.Args = cobra.ArbitraryArgs // checked once the flags are parsed
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		fs := cmd.Flags()
		if err := fs.Parse(spreadLists(fs, args)); err != nil {
			return cmd.FlagErrorFunc()(cmd, err)
		}
		if help, _ := fs.GetBool("help"); help {
			return pflag.ErrHelp // cobra prints the help and exits 0
		}
		return usageArgs(cobra.NoArgs)(cmd, fs.Args())
	}
	return cmd
}

// spreadLists rewrites args so that pflag sees each value of a list flag
// (a *listValue) on a flag of its own: the arguments after a list flag's
// first value, up to the next that starts with "-", are more values of it.
// The values of other flags are skipped (so "--scope x" never starts a
// list), and everything after "--" is left as it is.
func spreadLists(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			return append(out, args[i+1:]...)
		}
		f, inline := lookupFlag(fs, a)
		if f == nil {
			continue // not a flag, or an unknown one that pflag reports
		}
		if !inline {
			if f.NoOptDefVal != "" || i+1 == len(args) {
				continue // a bool flag; or a value missing, which pflag reports
			}
			i++
			out = append(out, args[i])
		}
		if _, ok := f.Value.(*listValue); !ok {
			continue
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			out = append(out, "--"+f.Name+"="+args[i])
		}
	}
	return out
}

// lookupFlag returns the flag that arg names ("--name", "--name=v", "-n",
// "-nv") and whether arg holds its value; nil when arg is not a flag or an
// unknown one.
func lookupFlag(fs *pflag.FlagSet, arg string) (*pflag.Flag, bool) {
	switch {
	case strings.HasPrefix(arg, "--") && len(arg) > 2:
		name, _, inline := strings.Cut(arg[2:], "=")
		return fs.Lookup(name), inline
	case strings.HasPrefix(arg, "-") && len(arg) > 1:
		f := fs.ShorthandLookup(arg[1:2])
		return f, len(arg) > 2
	}
	return nil, false
}

// listValue is a flag that takes several values: each Set adds to them.
// A value "" adds none but still counts as given (--headers "" clears the
// headers on update).
type listValue struct {
	values []string
	// split splits one argument into values and checks each.
	split func(string) ([]string, error)
}

func (l *listValue) Set(s string) error {
	vs, err := l.split(s)
	if err != nil {
		return err
	}
	l.values = append(l.values, vs...)
	return nil
}

func (l *listValue) Type() string   { return "list" }
func (l *listValue) String() string { return strings.Join(l.values, " ") }

// enumValue is a flag whose value is one of a few words.
type enumValue struct {
	value string
	allow []string
}

func newEnum(def string, allow ...string) *enumValue {
	return &enumValue{value: def, allow: allow}
}

func (e *enumValue) Set(s string) error {
	for _, a := range e.allow {
		if s == a {
			e.value = s
			return nil
		}
	}
	return fmt.Errorf("must be %s", orList(e.allow))
}

func (e *enumValue) Type() string   { return strings.Join(e.allow, "|") }
func (e *enumValue) String() string { return e.value }

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// addOutput adds --output (-o) with its default to a command that prints.
func addOutput(fs *pflag.FlagSet, def string) *enumValue {
	o := newEnum(def, outputTable, outputJSON)
	fs.VarP(o, "output", "o", "output format: table or json")
	return o
}

// requireName checks that --name was given: a usage error otherwise.
func requireName(cmd *cobra.Command, name string) error {
	if name == "" {
		return usageErrorf(cmd, "--name is required")
	}
	return nil
}

// usageErrorf is a usage error (exit status 2) that shows cmd's usage line.
func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return usageError{fmt.Errorf(format+"; usage: %s", append(args, useLine(cmd))...)}
}
