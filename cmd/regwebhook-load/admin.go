package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// admin calls regwebhook's API to make and remove the webhooks of a run.
type admin struct {
	base  string // http://host:port
	token string // admin.token; empty: none (regwebhook then answers loopback clients only)
	http  *http.Client
}

func newAdmin(base, token string) *admin {
	return &admin{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: time.Minute}}
}

// hookSpec is a webhook the load command makes: the API's create body.
type hookSpec struct {
	Name    string   `json:"name"`
	URI     string   `json:"uri"`
	Actions []string `json:"actions"`
	Scope   string   `json:"scope"`
}

func (a *admin) do(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// create makes the webhooks; on an error it removes those it made.
func (a *admin) create(ctx context.Context, hooks []hookSpec) error {
	for i, h := range hooks {
		if err := a.do(ctx, http.MethodPost, "/api/v1/webhooks", h); err != nil {
			a.remove(context.WithoutCancel(ctx), hooks[:i])
			return fmt.Errorf("create webhook %s: %w", h.Name, err)
		}
	}
	return nil
}

// remove deletes the webhooks, with their queued jobs and history.
func (a *admin) remove(ctx context.Context, hooks []hookSpec) error {
	var first error
	for _, h := range hooks {
		if err := a.do(ctx, http.MethodDelete, "/api/v1/webhooks/"+url.PathEscape(h.Name), nil); err != nil && first == nil {
			first = fmt.Errorf("delete webhook %s: %w", h.Name, err)
		}
	}
	return first
}

// hooksFor returns the webhooks of a run: groups of perEvent, each group's
// taking every push of one repository of w; webhook k of a group posts to
// uri(k).
func hooksFor(w *workload, perEvent int, uri func(k int) string) []hookSpec {
	var out []hookSpec
	for g := range w.groups {
		for k := range perEvent {
			out = append(out, hookSpec{
				Name:    fmt.Sprintf("ld%sg%dk%d", w.run, g, k),
				URI:     uri(k),
				Actions: []string{"push"},
				Scope:   w.repo(g) + ":*",
			})
		}
	}
	return out
}

// routes is what the floor needs of the webhooks: repository → URIs.
func routes(hooks []hookSpec) map[string][]string {
	out := map[string][]string{}
	for _, h := range hooks {
		repo, _, _ := strings.Cut(h.Scope, ":")
		out[repo] = append(out[repo], h.URI)
	}
	return out
}
