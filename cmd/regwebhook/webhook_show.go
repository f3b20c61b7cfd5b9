package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/regwebhook/regwebhook/bridge/api"
)

func newWebhookListCmd(r *remote) *cobra.Command {
	var output *enumValue
	cmd := azFlags(&cobra.Command{
		Use:     "list [--output table|json]",
		Short:   "List the webhooks, with their last delivery",
		Long:    "List every webhook, from the config file and the API, sorted by name: header values and secrets masked, the URI as scheme://host/…, with its last delivery and since when it fails. JSON output is a list of the API's webhook objects.",
		Example: "  regwebhook webhook list\n  regwebhook webhook list --output json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			raws, hooks, err := listWebhooks(cmd, c)
			if err != nil {
				return err
			}
			if output.value == outputTable {
				return printWebhooks(cmd.OutOrStdout(), hooks)
			}
			return printJSONList(cmd.OutOrStdout(), raws)
		},
	})
	output = addOutput(cmd.Flags(), outputTable)
	return cmd
}

// listWebhooks reads every page of the list: each webhook as the API
// answered it, and decoded.
func listWebhooks(cmd *cobra.Command, c *client) ([]json.RawMessage, []api.Webhook, error) {
	var (
		raws  []json.RawMessage
		hooks []api.Webhook
		after string
	)
	for {
		path := api.Prefix + "/webhooks?limit=" + strconv.Itoa(api.MaxPage)
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if _, err := c.get(cmd.Context(), path, &page); err != nil {
			return nil, nil, err
		}
		for _, raw := range page.Items {
			var h api.Webhook
			if err := json.Unmarshal(raw, &h); err != nil {
				return nil, nil, fmt.Errorf("list webhooks: decode %s: %w", raw, err)
			}
			raws, hooks = append(raws, raw), append(hooks, h)
		}
		if page.Next == "" || page.Next == after {
			return raws, hooks, nil
		}
		after = page.Next
	}
}

func newWebhookShowCmd(r *remote) *cobra.Command {
	var (
		name   string
		output *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:     "show --name N",
		Short:   "Show a webhook: header values and secret masked",
		Long:    "Show one webhook as list does, header values and secret masked, the URI as scheme://host/…; while its deliveries fail, the table says since when and the error of the last attempt. JSON output is the API's webhook object, with lastDelivery, failingSince and lastError.",
		Example: "  regwebhook webhook show --name myacrwebhook01",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var hook api.Webhook
			raw, err := c.get(cmd.Context(), hookPath(name), &hook)
			if err != nil {
				return err
			}
			if output.value == outputTable {
				return printWebhook(cmd.OutOrStdout(), hook)
			}
			return printJSON(cmd.OutOrStdout(), raw)
		},
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "the webhook's name")
	output = addOutput(cmd.Flags(), outputJSON)
	return cmd
}

func newWebhookGetConfigCmd(r *remote) *cobra.Command {
	var (
		name   string
		output *enumValue
	)
	cmd := azFlags(&cobra.Command{
		Use:     "get-config --name N",
		Short:   "Show a webhook's URI, header values and secret, unmasked",
		Long:    "Show what list and show mask: the service URI whole, the custom header values and the secret. Nothing else shows them.",
		Example: "  regwebhook webhook get-config --name myacrwebhook01",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(cmd, name); err != nil {
				return err
			}
			c, err := r.client(cmd)
			if err != nil {
				return err
			}
			var cfg api.Config
			raw, err := c.get(cmd.Context(), hookPath(name, "config"), &cfg)
			if err != nil {
				return err
			}
			if output.value == outputTable {
				return printConfig(cmd.OutOrStdout(), cfg)
			}
			return printJSON(cmd.OutOrStdout(), raw)
		},
	})
	cmd.Flags().StringVarP(&name, "name", "n", "", "the webhook's name")
	output = addOutput(cmd.Flags(), outputJSON)
	return cmd
}

// sortedHeaders are the names of h, sorted.
func sortedHeaders(h map[string]string) []string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
