package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// No secret anywhere it should not be: a whole run — create a webhook with
// header values, a secret and a URI whose path and query are secret, deliver
// to it (successes, failures, a dead letter), ping it, list, show, read its
// history and dead letters, change its secrets, redeliver, purge, delete —
// and then every answer but get-config's, headers included, and every log
// line of every part are searched for each secret.
func TestNoSecretLeaks(t *testing.T) {
	const (
		adminToken  = "admin-token-9f8e7d"
		headerValue = "Bearer header-value-5a4b3c"
		teamValue   = "team-key-1d2e3f"
		newValue    = "rotated-header-value-7c8d9e"
		uriPath     = "/services/T000/B000/path-secret-2b3c4d"
		uriQuery    = "query-secret-6e7f8a"
		newSecret   = "whsec_dGhpcyBpcyBhIHNlY3JldCBrZXkgb2YgMjQgYnl0ZXM="
	)
	secrets := []string{adminToken, headerValue, teamValue, newValue, uriPath, uriQuery, testSecret, newSecret,
		strings.TrimPrefix(testSecret, "whsec_"), strings.TrimPrefix(newSecret, "whsec_")}

	h := newHarness(t, options{token: adminToken})
	target := hooktest.New(t, hooktest.Statuses(200, 500, 500, 500, 200))
	uri := target.URL() + uriPath + "?token=" + uriQuery
	h.create(fmt.Sprintf(`{"name":"secrethook","uri":%q,"scope":"app:*","headers":{"Authorization":%q,"X-Team":%q},"secret":%q}`,
		uri, headerValue, teamValue, testSecret))

	name := "secrethook"
	h.want(http.StatusOK, get(api.Prefix+"/webhooks"))
	h.push("app", "v1")
	h.eventually("the first delivery is recorded", func() bool { return len(h.history(name).Items) == 1 })
	h.push("app", "v2")
	h.eventually("a dead letter", func() bool { return len(h.deadLetters(name).Items) == 1 })
	h.want(http.StatusOK, post(hookPath(name, "/ping"), ""))
	h.want(http.StatusOK, get(api.Prefix+"/webhooks"))
	h.want(http.StatusOK, get(hookPath(name)))
	h.want(http.StatusOK, get(hookPath(name, "/events")))
	h.want(http.StatusOK, get(hookPath(name, "/deadletters")))
	dead := h.deadLetters(name).Items[0]
	h.want(http.StatusAccepted, post(hookPath(name, "/deliveries/"+dead.ID+"/redeliver"), ""))
	h.eventually("the redelivery is recorded", func() bool { return len(h.history(name).Items) == 6 })
	h.want(http.StatusOK, patch(hookPath(name), fmt.Sprintf(`{"headers":{"Authorization":%q},"secret":%q}`, newValue, newSecret)))
	h.want(http.StatusOK, post(hookPath(name, "/ping"), ""))
	// Unreachable: the errors of failed connections name the URI.
	h.want(http.StatusOK, patch(hookPath(name), fmt.Sprintf(`{"uri":%q}`, "http://127.0.0.1:1"+uriPath+"/gone")))
	h.push("app", "v3")
	h.eventually("a second dead letter", func() bool { return len(h.deadLetters(name).Items) == 1 })
	h.want(http.StatusOK, post(hookPath(name, "/ping"), ""))
	h.want(http.StatusBadRequest, patch(hookPath(name), `{"headers":{"Authorization":"***"}}`))
	h.want(http.StatusBadRequest, patch(hookPath(name), `{"headers":{"Bad Name":"x"}}`))
	h.want(http.StatusUnauthorized, call{method: "GET", path: hookPath(name), noAuth: true,
		header: http.Header{"Authorization": {"Bearer " + adminToken + "x"}}})
	h.want(http.StatusOK, get(hookPath(name, "/events")))
	h.want(http.StatusOK, del(hookPath(name, "/deadletters")))
	cfg := h.want(http.StatusOK, get(hookPath(name, "/config")))
	h.want(http.StatusNoContent, del(hookPath(name)))

	// The secrets searched for are the real ones: get-config and the target
	// saw them.
	for _, s := range []string{uriPath, newValue, newSecret} { // PATCHes replaced X-Team and the query
		if !strings.Contains(string(cfg.body), s) {
			t.Fatalf("get-config does not hold %q: the search below would prove nothing", s)
		}
	}
	got := target.WaitFor(t, 7, 10*time.Second)
	if r := got[0]; r.Header.Get("Authorization") != headerValue || r.Path != uriPath+"?token="+uriQuery {
		t.Fatalf("the target got %s %v: the webhook's secrets were not sent", r.Path, r.Header)
	}

	h.mu.Lock()
	answers := append([]answer(nil), h.answers...)
	h.mu.Unlock()
	for _, a := range answers {
		if strings.HasSuffix(strings.SplitN(a.call, "?", 2)[0], "/config") {
			continue
		}
		var sb strings.Builder
		sb.Write(a.body)
		for k, vs := range a.header {
			sb.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
		}
		for _, s := range secrets {
			if strings.Contains(sb.String(), s) {
				t.Errorf("the answer to %s holds the secret %q:\n%s", a.call, s, sb.String())
			}
		}
	}
	lines := h.logs.AllEntries()
	if len(lines) == 0 {
		t.Fatal("no log lines: the search below would prove nothing")
	}
	for _, e := range lines {
		line, err := e.String()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a log line holds the secret %q: %s", s, line)
			}
		}
	}
	t.Logf("searched %d answers and %d log lines", len(answers), len(lines))
}
