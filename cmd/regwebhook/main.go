// Command regwebhook gives a self-hosted Docker Distribution registry
// webhooks: it takes the registry's notifications, matches them against
// webhook rules and delivers them through a durable retry queue.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks a command line that is wrong: exit status 2.
type usageError struct{ error }

// run executes the command line and returns the exit status: 0 success,
// 1 an error, 2 bad usage. An error of several lines (a config file's
// problems) is printed a line at a time, each a message of its own.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintln(stderr, "regwebhook:", line)
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "regwebhook",
		Short:         "Webhooks for a self-hosted Docker Distribution registry",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable, so that cobra checks its arguments (an unknown command)
		// with usageArgs instead of failing in its own way.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w; usage: %s", err, useLine(cmd))}
	})
	root.AddCommand(newServeCmd(), newConfigCmd(), newVersionCmd(), newWebhookCmd(), newHealthCmd())
	root.InitDefaultCompletionCmd()
	usageChecks(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "regwebhook", version)
		},
	}
}

// usageChecks makes every bad command line under cmd exit 2, whoever wrote
// the command: each argument check is wrapped in usageArgs (no check means
// no arguments, so an unknown subcommand is caught), and a command that only
// groups others says it needs one of them instead of printing help.
func usageChecks(cmd *cobra.Command) {
	check := cmd.Args
	if check == nil {
		check = cobra.NoArgs
	}
	cmd.Args = usageArgs(check)
	if !cmd.Runnable() && cmd.HasSubCommands() {
		cmd.RunE = func(cmd *cobra.Command, _ []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.Name(), strings.Join(names, ", "))}
		}
	}
	for _, c := range cmd.Commands() {
		usageChecks(c)
	}
}

// usageArgs makes an argument check's error a usage error (exit status 2)
// that shows the command's usage line. A check that already returns a
// usageError is left as it is.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		err := check(cmd, args)
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return usageError{fmt.Errorf("%w; usage: %s", err, useLine(cmd))}
	}
}

// useLine is the command's usage line without cobra's " [flags]"; the
// root's says that it takes a command.
func useLine(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name() + " COMMAND"
	}
	return strings.TrimSuffix(cmd.UseLine(), " [flags]")
}
