package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/regwebhook/regwebhook/bridge/api"
)

// Where the CLI finds a running regwebhook, when neither a flag nor the
// environment says.
const (
	defaultServer = "http://127.0.0.1:5080"
	envServer     = "REGWEBHOOK_SERVER"
	envToken      = "REGWEBHOOK_TOKEN"
)

// clientTimeout bounds one call of the API. A ping waits for the target's
// answer, which delivery.timeout (default 10s) bounds on the server.
const clientTimeout = time.Minute

// client calls the admin API of one regwebhook (SPEC §5).
type client struct {
	server *url.URL // scheme://host[:port], perhaps with a path prefix
	token  string   // admin.token; empty: none sent
	http   *http.Client
}

// apiError is an answer of the API that is not 2xx. Its message is the one
// line the CLI prints: the API's error code and message.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	msg := e.Code + ": " + e.Message
	switch e.Code {
	case api.CodeUnauthorized:
		msg += "; give the admin token with --token or $" + envToken
	case api.CodeForbidden:
		msg += "; configure admin.token and give it with --token or $" + envToken
	}
	return msg
}

// parseServer reads the --server value: an http or https URL, or host:port
// (then http). A path is kept as a prefix, for a regwebhook behind a proxy.
func parseServer(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--server %q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--server %q must be http://HOST:PORT or https://HOST:PORT", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// url is the address of path (with query, already escaped) on the server.
func (c *client) url(path string) string {
	return c.server.String() + path
}

// call sends method path with in as its JSON body (nil: none), and returns
// the body of a 2xx answer. Every answer that is not 2xx is an *apiError.
func (c *client) call(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode the request %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return nil, fmt.Errorf("make the request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	// Without an admin token the API takes changes only as JSON, body or
	// not (against cross-site forms).
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%w (is regwebhook serve running there? --server or $%s says where)", err, envServer)
	}
	if err != nil {
		return nil, err // a *url.Error: it names the method and URL
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, c.url(path), err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, answerError(method, c.url(path), resp, out)
	}
	return out, nil
}

// answerError turns an answer that is not 2xx into an error: the API's
// {"error":{"code","message"}}, or, from something else in the way (a
// proxy), the status and the start of the body.
func answerError(method, url string, resp *http.Response, body []byte) error {
	var e api.ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	snippet := strings.Join(strings.Fields(string(body)), " ")
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	if snippet != "" {
		snippet = ": " + snippet
	}
	return fmt.Errorf("%s %s answered %s, not from regwebhook's API%s", method, url, resp.Status, snippet)
}

// get calls GET path and decodes the answer into out; it returns the
// answer's bytes as well, for JSON output.
func (c *client) get(ctx context.Context, path string, out any) ([]byte, error) {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// do calls method path with body in and decodes the answer into out (nil:
// not decoded). It returns the answer's bytes.
func (c *client) do(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	b, err := c.call(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: the answer is not what regwebhook's API answers (another version?): %w", method, c.url(path), err)
		}
	}
	return b, nil
}

// hookPath is the API path of webhook name, with more path elements after
// it, each escaped.
func hookPath(name string, more ...string) string {
	p := api.Prefix + "/webhooks/" + url.PathEscape(name)
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}
