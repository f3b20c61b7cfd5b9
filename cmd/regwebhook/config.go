package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/regwebhook/regwebhook/config"
)

const configCheckLong = `Check a config file as serve would read it: YAML syntax, unknown keys,
values of the wrong type, ${NAME} variables (taken from this environment),
and every value and webhook. Prints "FILE: ok", or each problem on its own
line as FILE:LINE: KEY: MESSAGE, and exits 1.

Relative paths in the file (store.embedded.path, CA and TLS files) are
relative to the working directory, as they are for serve.`

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with the config file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("config needs a subcommand: %s", useLine(cmd.Commands()[0]))}
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a config file; print what is wrong with line numbers",
		Long:  configCheckLong,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := config.Load(args[0], os.LookupEnv); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	})
	return cmd
}
