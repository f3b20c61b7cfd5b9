package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/history"
)

func newWebhookPingCmd(r *remote) *cobra.Command {
	var (
		name   string
		output *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:   "ping --name N",
		Short: "Send a ping to a webhook now; exit 1 unless it answers 2xx",
		Long: `Send the webhook a ping ({"id","timestamp","action":"ping"}) now, with its
headers and signing, even while it is disabled, and print the attempt as
list-events shows it. The exit status is 1 when the target did not answer
2xx. A ping is recorded in the webhook's history and never retried.`,
		Example: "  regwebhook webhook ping --name myacrwebhook01",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var e history.Entry
			raw, err := c.do(cmd.Context(), http.MethodPost, hookPath(name, "ping"), nil, &e)
			if err != nil {
				return err
			}
			if output.value == outputTable {
				err = printEvents(cmd.OutOrStdout(), []history.Entry{e})
			} else {
				err = printJSON(cmd.OutOrStdout(), raw)
			}
			if err != nil {
				return err
			}
			switch {
			case e.Response == nil:
				return fmt.Errorf("ping of webhook %q: no answer: %s", name, e.Error)
			case e.Response.StatusCode/100 != 2:
				return fmt.Errorf("ping of webhook %q: the target answered %s", name, statusText(e.Response))
			}
			return nil
		},
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "the webhook's name")
	output = addOutput(cmd.Flags(), outputJSON)
	return cmd
}

func newWebhookListEventsCmd(r *remote) *cobra.Command {
	var (
		name   string
		top    int
		output *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:   "list-events --name N [--top K]",
		Short: "List a webhook's recent delivery attempts, with request and response",
		Long: `List a webhook's delivery attempts and pings, newest first: the table
first sums each up, then shows its request (headers, body) and response
(status, headers, body). Custom header values, signatures and the secret
are masked as ***, and the URI shown as scheme://host/….`,
		Example: "  regwebhook webhook list-events --name myacrwebhook01 --top 5",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			path := hookPath(name, "events")
			if cmd.Flags().Changed("top") {
				if top < 1 || top > api.MaxLimit {
					return usageErrorf(cmd, "--top must be from 1 to %d", api.MaxLimit)
				}
				path += "?limit=" + strconv.Itoa(top)
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var events struct {
				Items []json.RawMessage `json:"items"`
			}
			if _, err := c.get(cmd.Context(), path, &events); err != nil {
				return err
			}
			if output.value == outputJSON {
				return printJSONList(cmd.OutOrStdout(), events.Items)
			}
			entries := make([]history.Entry, len(events.Items))
			for i, raw := range events.Items {
				if err := json.Unmarshal(raw, &entries[i]); err != nil {
					return fmt.Errorf("list events of webhook %q: decode %s: %w", name, raw, err)
				}
			}
			return printEvents(cmd.OutOrStdout(), entries)
		},
	})
	fs := cmd.Flags()
	fs.StringVarP(&name, "name", "n", "", "the webhook's name")
	fs.IntVar(&top, "top", 0, "show the newest K attempts only (default all kept: history.perwebhook)")
	output = addOutput(fs, outputTable)
	return cmd
}

func newWebhookRedeliverCmd(r *remote) *cobra.Command {
	var (
		name, id string
		all      bool
		output   *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:   "redeliver --name N (--id DELIVERY | --all-deadletters)",
		Short: "Queue a delivery again, or every dead letter",
		Long: `Queue a delivery of the webhook again, by its delivery id (the id in
list-events and list-deadletters), from the dead letters or the history;
or every dead letter with --all-deadletters. A redelivery keeps its
delivery id, carries X-Regwebhook-Redelivery: true and gets its attempts
afresh. A delivery still queued cannot be redelivered.`,
		Example: "  regwebhook webhook redeliver --name myacrwebhook01 --id 7c9e6679-7425-40de-944b-e07fc1f90ae7\n" +
			"  regwebhook webhook redeliver --name myacrwebhook01 --all-deadletters",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			var path string
			switch {
			case all && cmd.Flags().Changed("id"):
				return usageErrorf(cmd, "give --id or --all-deadletters, not both")
			case all:
				path = hookPath(name, "deadletters", "redeliver")
			case id != "":
				path = hookPath(name, "deliveries", id, "redeliver")
			default:
				return usageErrorf(cmd, "give --id DELIVERY or --all-deadletters")
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var q api.Queued
			raw, err := c.do(cmd.Context(), http.MethodPost, path, nil, &q)
			if err != nil {
				return err
			}
			if output.value == outputTable {
				return printCount(cmd.OutOrStdout(), "QUEUED", q.Queued)
			}
			return printJSON(cmd.OutOrStdout(), raw)
		},
	})
	fs := cmd.Flags()
	fs.StringVarP(&name, "name", "n", "", "the webhook's name")
	fs.StringVar(&id, "id", "", "the delivery id to deliver again")
	fs.BoolVar(&all, "all-deadletters", false, "deliver every dead letter again")
	output = addOutput(fs, outputJSON)
	return cmd
}

func newWebhookListDeadLettersCmd(r *remote) *cobra.Command {
	var (
		name   string
		output *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:   "list-deadletters --name N",
		Short: "List a webhook's dead letters: deliveries out of attempts or of age",
		Long: `List the deliveries of a webhook that ran out of attempts
(delivery.retry.maxattempts) or of age (maxage), the last to die first,
with their payload. redeliver queues them again; purge-deadletters drops them.`,
		Example: "  regwebhook webhook list-deadletters --name myacrwebhook01 --output table",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var dead struct {
				Items []json.RawMessage `json:"items"`
			}
			if _, err := c.get(cmd.Context(), hookPath(name, "deadletters"), &dead); err != nil {
				return err
			}
			if output.value == outputJSON {
				return printJSONList(cmd.OutOrStdout(), dead.Items)
			}
			letters := make([]api.DeadLetter, len(dead.Items))
			for i, raw := range dead.Items {
				if err := json.Unmarshal(raw, &letters[i]); err != nil {
					return fmt.Errorf("list dead letters of webhook %q: decode %s: %w", name, raw, err)
				}
			}
			return printDeadLetters(cmd.OutOrStdout(), letters)
		},
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "the webhook's name")
	output = addOutput(cmd.Flags(), outputJSON)
	return cmd
}

func newWebhookPurgeDeadLettersCmd(r *remote) *cobra.Command {
	var (
		name   string
		output *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:     "purge-deadletters --name N",
		Short:   "Drop every dead letter of a webhook",
		Example: "  regwebhook webhook purge-deadletters --name myacrwebhook01",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var p api.Purged
			raw, err := c.do(cmd.Context(), http.MethodDelete, hookPath(name, "deadletters"), nil, &p)
			if err != nil {
				return err
			}
			if output.value == outputTable {
				return printCount(cmd.OutOrStdout(), "PURGED", p.Purged)
			}
			return printJSON(cmd.OutOrStdout(), raw)
		},
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "the webhook's name")
	output = addOutput(cmd.Flags(), outputJSON)
	return cmd
}
