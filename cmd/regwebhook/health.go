package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const healthLong = `Ask a running regwebhook whether it is ready: exit 0 when GET /readyz
answers 200 (its store answers), 1 with the reason otherwise. For container
HEALTHCHECKs, where the image has no curl:

  HEALTHCHECK CMD ["regwebhook", "health"]

--server defaults to $REGWEBHOOK_SERVER, else http://127.0.0.1:5080. /readyz
needs no token. Warnings about the store's persistence settings are printed
but do not fail the check.`

func newHealthCmd() *cobra.Command {
	var (
		server  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health [--server URL]",
		Short: "Exit 0 when regwebhook is ready (/readyz answers 200), 1 otherwise",
		Long:  healthLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("server") {
				server = os.Getenv(envServer)
			}
			if server == "" {
				server = defaultServer
			}
			u, err := parseServer(server)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if timeout <= 0 {
				return usageErrorf(cmd, "--timeout must be more than 0")
			}
			return health(cmd.OutOrStdout(), u.String()+"/readyz", timeout)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "regwebhook's URL (env "+envServer+"; default "+defaultServer+")")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// readiness is what /readyz answers: status ok with the store driver and
// its warnings, or status unavailable with the store's error in store.
type readiness struct {
	Status   string   `json:"status"`
	Store    string   `json:"store"`
	Warnings []string `json:"warnings"`
}

// health checks url (/readyz) and prints the outcome; an error says why it
// is not ready.
func health(w io.Writer, url string, timeout time.Duration) error {
	c := &http.Client{
		Timeout: timeout,
		// A redirect is not readiness.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("not ready: GET %s: read the answer: %w", url, err)
	}
	var r readiness
	decoded := json.Unmarshal(body, &r) == nil
	if resp.StatusCode != http.StatusOK {
		reason := strings.Join(strings.Fields(string(body)), " ")
		if decoded && r.Store != "" {
			reason = "store: " + r.Store
		}
		if len(reason) > 300 {
			reason = reason[:300] + "…"
		}
		return fmt.Errorf("not ready: GET %s answered %s: %s", url, resp.Status, orDash(reason))
	}
	msg := "ready"
	if decoded && r.Store != "" {
		msg += " (store " + r.Store + ")"
	}
	fmt.Fprintln(w, msg)
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
	return nil
}
