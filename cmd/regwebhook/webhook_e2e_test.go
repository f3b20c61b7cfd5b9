package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/internal/hooktest"
	"github.com/regwebhook/regwebhook/internal/registrytest"
)

// The webhook commands end to end: a real serve process with an admin
// token, the real registry notifying it, and the CLI managing a webhook as
// a user does — create with headers, a scope and a generated secret; a push
// delivered, seen in list-events; a ping; the scope changed; disabled and
// enabled; deleted. Secrets show in get-config only.
func TestWebhookEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	proc := startServe(t, serveConfig(t, dir, addr, `admin: {token: e2e-admin-t0ken}
delivery: {retry: {initial: 50ms, max: 200ms}}
`), addr)
	reg := registrytest.Start(t, registrytest.Options{NotifyURL: "http://" + addr + "/v1/notifications"})
	receiver, sentinel := hooktest.New(t), hooktest.New(t)
	t.Setenv(envServer, "http://"+addr)
	t.Setenv(envToken, "e2e-admin-t0ken")

	// Secrets: the header values, the generated secret and the URI's path
	// and query must show in get-config only.
	const (
		authValue = "Bearer e2e-s3cret-value"
		teamValue = "ci-team-7f3"
		uriPath   = "/hooks/e2e-path-9f3?key=q8z"
	)
	var created api.Webhook
	cliJSON(t, &created, "webhook", "create", "--name", "e2ehook01", "--uri", receiver.URL()+uriPath,
		"--actions", "push", "delete", "--headers", "Authorization="+authValue, "X-Team="+teamValue,
		"--scope", "team/app:*", "--generate-secret")
	secret := created.Secret
	if keys, err := decodeSecret(secret); err != nil || len(keys) != 32 {
		t.Fatalf("create --generate-secret printed secret %q: %v, want whsec_ and 32 bytes in base64", secret, err)
	}
	created.Secret = "(the generated one)"
	want := api.Webhook{}
	want.Name, want.URI, want.Scope = "e2ehook01", receiver.URL()+"/…", "team/app:*"
	want.Headers = map[string]string{"Authorization": "***", "X-Team": "***"}
	want.Actions, want.Status, want.Format, want.Source = []event.Action{event.Push, event.Delete}, "enabled", "acr", "api"
	want.Secret = "(the generated one)"
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("create printed (-want +got):\n%s", diff)
	}
	cliOK(t, "webhook", "create", "--name", "e2esentinel", "--uri", sentinel.URL(), "--actions", "push", "--output", "table")
	cliFails(t, 1, "regwebhook: name_taken: a webhook is already called \"e2ehook01\"\n",
		"webhook", "create", "--name", "e2ehook01", "--uri", receiver.URL())
	cliFails(t, 1, "regwebhook: unauthorized: missing or wrong bearer token (admin.token); give the admin token with --token or $REGWEBHOOK_TOKEN\n",
		"webhook", "list", "--token", "wrong")

	var cfg api.Config
	cliJSON(t, &cfg, "webhook", "get-config", "--name", "e2ehook01")
	wantCfg := api.Config{URI: receiver.URL() + uriPath, Headers: map[string]string{"Authorization": authValue, "X-Team": teamValue}, Secret: secret}
	if diff := cmp.Diff(wantCfg, cfg); diff != "" {
		t.Errorf("get-config (-want +got):\n%s", diff)
	}
	secrets := []string{authValue, teamValue, secret, strings.TrimPrefix(secret, "whsec_"), "e2e-path-9f3", "q8z"}
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, out)
			}
		}
	}
	for _, args := range [][]string{
		{"webhook", "show", "--name", "e2ehook01"},
		{"webhook", "show", "--name", "e2ehook01", "--output", "table"},
		{"webhook", "list"},
		{"webhook", "list", "--output", "json"},
	} {
		out := cliOK(t, args...)
		noSecrets(strings.Join(args, " "), out)
		if !strings.Contains(out, "e2ehook01") {
			t.Errorf("%s does not show the webhook:\n%s", strings.Join(args, " "), out)
		}
	}

	// A push in scope is delivered with the headers, signed with the secret
	// create printed, and list-events shows it.
	reg.PushImage(t, "team/app", "v1")
	q := waitPush(t, receiver, "team/app:v1")
	if got := q.Header.Get("Authorization") + " " + q.Header.Get("X-Team"); got != authValue+" "+teamValue {
		t.Errorf("the delivery carried headers %q, want %q", got, authValue+" "+teamValue)
	}
	checkSignature(t, q, secret)
	var events []history.Entry
	poll(t, 20*time.Second, func() bool {
		cliJSON(t, &events, "webhook", "list-events", "--name", "e2ehook01", "--output", "json")
		return len(events) > 0
	}, func() string { return "list-events shows nothing; serve's log:\n" + proc.logs.String() })
	e := events[0]
	if e.Action != "push" || e.Response == nil || e.Response.StatusCode != 200 || e.Request.Headers.Get("Authorization") != "***" {
		t.Errorf("list-events shows %+v, want the push answered 200 with Authorization masked", e)
	}
	table := cliOK(t, "webhook", "list-events", "--name", "e2ehook01")
	noSecrets("list-events", table)
	for _, want := range []string{e.ID, "push", "200 OK", "Authorization: ***", "X-Team: ***", `"tag":"v1"`} {
		if !strings.Contains(table, want) {
			t.Errorf("list-events does not show %q:\n%s", want, table)
		}
	}

	// Ping: sent now, with the headers; shown as list-events shows an
	// attempt; recorded in history.
	var ping history.Entry
	cliJSON(t, &ping, "webhook", "ping", "--name", "e2ehook01")
	if ping.Action != "ping" || ping.Response == nil || ping.Response.StatusCode != 200 {
		t.Errorf("ping printed %+v, want a ping answered 200", ping)
	}
	var pinged bool
	for _, q := range receiver.Requests() {
		pinged = pinged || q.Header.Get("X-Regwebhook-Event") == "ping" && q.Header.Get("Authorization") == authValue
	}
	if !pinged {
		t.Errorf("the receiver got no ping with the headers:\n%s", hooktest.Describe(receiver.Requests()))
	}
	cliJSON(t, &events, "webhook", "list-events", "--name", "e2ehook01", "--top", "1", "--output", "json")
	if len(events) != 1 || events[0].ID != ping.ID {
		t.Errorf("list-events --top 1 shows %d entries, want the ping %s alone: %+v", len(events), ping.ID, events)
	}

	// A new scope: update changes it alone.
	var updated api.Webhook
	cliJSON(t, &updated, "webhook", "update", "--name", "e2ehook01", "--scope", "team/other:*")
	if updated.Scope != "team/other:*" || updated.LastDelivery == nil || updated.LastDelivery.StatusCode != 200 {
		t.Errorf("update printed scope %q and last delivery %+v, want team/other:* and the push answered 200", updated.Scope, updated.LastDelivery)
	}
	cliJSON(t, &cfg, "webhook", "get-config", "--name", "e2ehook01")
	if diff := cmp.Diff(wantCfg, cfg); diff != "" {
		t.Errorf("get-config after update --scope (-want +got):\n%s", diff)
	}
	// The sentinel, which takes every push, shows when an event went through.
	reg.PushImage(t, "team/app", "v2")
	waitPush(t, sentinel, "team/app:v2")
	reg.PushImage(t, "team/other", "v1")
	waitPush(t, receiver, "team/other:v1")

	// Disabled, it gets no delivery; enabled again, it does.
	cliJSON(t, &updated, "webhook", "update", "--name", "e2ehook01", "--status", "disabled")
	if updated.Status != "disabled" {
		t.Errorf("update --status disabled printed status %q", updated.Status)
	}
	reg.PushImage(t, "team/other", "v2")
	waitPush(t, sentinel, "team/other:v2")
	cliOK(t, "webhook", "update", "--name", "e2ehook01", "--status", "enabled")
	reg.PushImage(t, "team/other", "v3")
	waitPush(t, receiver, "team/other:v3")
	if diff := cmp.Diff([]string{"team/app:v1", "team/other:v1", "team/other:v3"}, pushesGot(t, receiver)); diff != "" {
		t.Errorf("pushes delivered (-want +got), out of scope (team/app:v2) and while disabled (team/other:v2) missing:\n%s", diff)
	}

	// Deleted, it is gone.
	if out := cliOK(t, "webhook", "delete", "--name", "e2ehook01"); out != "" {
		t.Errorf("delete printed %q, want nothing", out)
	}
	cliFails(t, 1, "regwebhook: not_found: no webhook is called \"e2ehook01\"\n", "webhook", "show", "--name", "e2ehook01")
	cliFails(t, 1, "regwebhook: not_found: no webhook is called \"e2ehook01\"\n", "webhook", "delete", "--name", "e2ehook01")
	var list []api.Webhook
	cliJSON(t, &list, "webhook", "list", "--output", "json")
	if len(list) != 1 || list[0].Name != "e2esentinel" {
		t.Errorf("list after delete shows %+v, want e2esentinel alone", list)
	}
	noSecrets("serve's log", proc.logs.String())
}

// decodeSecret decodes whsec_<base64>.
func decodeSecret(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
}

// checkSignature checks that q is signed with secret as Standard Webhooks
// sign: webhook-signature holds v1,base64(HMAC-SHA256(id.timestamp.body)).
func checkSignature(t *testing.T, q hooktest.Request, secret string) {
	t.Helper()
	key, err := decodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(q.Header.Get("Webhook-Id") + "." + q.Header.Get("Webhook-Timestamp") + "."))
	mac.Write(q.Body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := q.Header.Get("Webhook-Signature"); got != want {
		t.Errorf("webhook-signature %q, want %q (HMAC with the secret create printed)", got, want)
	}
}

// Dead letters end to end: a delivery that runs out of attempts is listed,
// redelivered (it keeps its delivery id), dies again, is purged; a ping the
// target fails exits 1 and still prints the attempt.
func TestWebhookDeadLetters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	proc := startServe(t, serveConfig(t, dir, addr, "delivery: {retry: {initial: 50ms, max: 100ms, maxattempts: 2}}\n"), addr)
	reg := registrytest.Start(t, registrytest.Options{NotifyURL: "http://" + addr + "/v1/notifications"})
	// Two attempts fail: dead. The redelivery succeeds. The next
	// redelivery fails twice: dead again.
	failing := hooktest.New(t, hooktest.Statuses(500, 500, 200, 500))
	// No admin token: the API answers this machine.
	server := "--server=http://" + addr
	hook := func(args ...string) []string {
		return append(append([]string{"webhook"}, args...), "--name", "e2efailing", server)
	}
	cliOK(t, hook("create", "--uri", failing.URL(), "--scope", "team/fail:*")...)

	var dead []api.DeadLetter
	waitDead := func(n int) {
		t.Helper()
		poll(t, 20*time.Second, func() bool {
			cliJSON(t, &dead, hook("list-deadletters")...)
			return len(dead) == n
		}, func() string {
			return fmt.Sprintf("list-deadletters does not show %d dead letters;", n) + " the receiver got:\n" +
				hooktest.Describe(failing.Requests()) + "serve's log:\n" + proc.logs.String()
		})
	}
	reg.PushImage(t, "team/fail", "v1")
	waitDead(1)
	id := dead[0].ID
	if dead[0].Attempts != 2 || dead[0].Action != "push" || !strings.Contains(dead[0].Content, `"tag":"v1"`) {
		t.Errorf("dead letter %+v, want the push of v1 after 2 attempts", dead[0])
	}
	table := cliOK(t, hook("list-deadletters", "--output", "table")...)
	if !strings.Contains(table, id) || !strings.Contains(table, "answered 500") {
		t.Errorf("list-deadletters --output table does not show %s and its error:\n%s", id, table)
	}
	var list []api.Webhook
	cliJSON(t, &list, "webhook", "list", "--output", "json", server)
	if len(list) != 1 || list[0].FailingSince == nil || list[0].LastDelivery == nil || list[0].LastDelivery.Status != api.DeliveryFailed {
		t.Errorf("list shows %+v, want e2efailing failing", list)
	}

	if out := cliOK(t, hook("redeliver", "--all-deadletters")...); out != "{\n  \"queued\": 1\n}\n" {
		t.Errorf("redeliver --all-deadletters printed %q", out)
	}
	reqs := failing.WaitFor(t, 3, 20*time.Second)
	if q := reqs[2]; q.Header.Get("X-Regwebhook-Delivery") != id || q.Header.Get("X-Regwebhook-Redelivery") != "true" {
		t.Errorf("the redelivery carried X-Regwebhook-Delivery %q, X-Regwebhook-Redelivery %q; want %s, true",
			q.Header.Get("X-Regwebhook-Delivery"), q.Header.Get("X-Regwebhook-Redelivery"), id)
	}
	waitDead(0)
	// Delivered: list-events shows it answered 200 (until then it is still
	// queued, and cannot be redelivered).
	poll(t, 20*time.Second, func() bool {
		var events []history.Entry
		cliJSON(t, &events, hook("list-events", "--top", "1", "--output", "json")...)
		return len(events) == 1 && events[0].ID == id && events[0].Response != nil && events[0].Response.StatusCode == 200
	}, func() string {
		return "list-events does not show the redelivery answered 200; serve's log:\n" + proc.logs.String()
	})

	// Redeliver by id, from the history: it fails twice and dies again.
	if out := cliOK(t, hook("redeliver", "--id", id, "--output", "table")...); out != "QUEUED\n1\n" {
		t.Errorf("redeliver --id --output table printed %q", out)
	}
	waitDead(1)
	cliFails(t, 1, "regwebhook: not_found: webhook \"e2efailing\" has no delivery \"nosuchdelivery\" in its dead letters or its history\n",
		hook("redeliver", "--id", "nosuchdelivery")...)
	if out := cliOK(t, hook("purge-deadletters")...); out != "{\n  \"purged\": 1\n}\n" {
		t.Errorf("purge-deadletters printed %q", out)
	}
	waitDead(0)

	// A ping the target answers 500: exit 1, the attempt printed anyway.
	r := cliFails(t, 1, "regwebhook: ping of webhook \"e2efailing\": the target answered 500 Internal Server Error\n", hook("ping", "--output", "table")...)
	if !strings.Contains(r.stdout, "500 Internal Server Error") || !strings.Contains(r.stdout, `"action":"ping"`) {
		t.Errorf("ping --output table printed:\n%s", r.stdout)
	}
}

// health exits 0 when /readyz answers 200, and 1 with the reason when
// regwebhook is not there or not ready.
func TestHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	startServe(t, serveConfig(t, dir, addr, ""), addr)
	if out := cliOK(t, "health", "--server", "http://"+addr); out != "ready (store embedded)\n" {
		t.Errorf("health printed %q", out)
	}
	t.Setenv(envServer, addr)
	if out := cliOK(t, "health"); out != "ready (store embedded)\n" {
		t.Errorf("health with %s=%s printed %q", envServer, addr, out)
	}
	gone := freeAddr(t)
	cliFails(t, 1, "regwebhook: not ready: Get \"http://"+gone+"/readyz\": dial tcp "+gone+": connect: connection refused\n",
		"health", "--server", gone)
	// What /readyz answers when the store does not (a Redis that is down).
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"unavailable","store":"ping redis at 127.0.0.1:6379: connection refused"}` + "\n"))
	}))
	defer down.Close()
	cliFails(t, 1, "regwebhook: not ready: GET "+down.URL+"/readyz answered 503 Service Unavailable: store: ping redis at 127.0.0.1:6379: connection refused\n",
		"health", "--server", down.URL)
}
