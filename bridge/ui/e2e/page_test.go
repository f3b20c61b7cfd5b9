package e2e

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
	"github.com/regwebhook/regwebhook/internal/registrytest"
)

const (
	adminToken = "admin-token-for-the-page"
	// markup is what a hostile service URI answers: if the page ever put it
	// in as HTML, the browser would run its onerror.
	markup = `<img src=x onerror="window.pwned=1">`
)

// hostile is a service URI that answers 500 with markup in its body and in
// a header, and records what it got.
type hostile struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.mu.Unlock()
		w.Header().Set("X-Evil", markup)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(markup))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostile) requests() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]http.Header(nil), h.got...)
}

// waitRequests waits until the hostile receiver got n requests.
func (h *hostile) waitRequests(t *testing.T, n int) []http.Header {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for len(h.requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the hostile receiver got %d requests, want %d", len(h.requests()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h.requests()
}

// A user with the admin token manages webhooks through the page and reads
// what the real registry's push caused: sign in, create a webhook through
// the form, see the delivery and its response, ping, disable, read dead
// letters and redeliver one, and delete — and nothing a service URI
// answered runs as script.
func TestWebPage(t *testing.T) {
	ok := hooktest.New(t)
	evil := newHostile(t)
	cfg := config.Default()
	cfg.Admin.Token = adminToken
	cfg.Receiver.Token = "receiver-token"
	cfg.Delivery.Retry.MaxAttempts = 1 // a failed delivery is a dead letter at once
	cfg.Webhooks = []*rule.Webhook{{Name: "fromthefile", URI: ok.URL() + "/file", Scope: "elsewhere:*"}}
	srv := startServer(t, cfg)
	base := "http://" + srv.Addr()
	client := apiClient{t: t, base: base, token: adminToken}
	reg := registrytest.Start(t, registrytest.Options{NotifyURL: base + "/v1/notifications", NotifyToken: "receiver-token"})
	b := startBrowser(t)

	// Without the token the page shows nothing but the prompt; a wrong one
	// is refused with the API's reason.
	b.do("open the page", chromedp.Navigate(base+"/ui/"))
	b.waitFor("the token prompt", `!!document.querySelector('#token-form')`)
	if got := eval[bool](b, `!!document.querySelector('#webhooks, .list, #settings')`); got {
		t.Errorf("the page shows webhooks before a token was given")
	}
	b.typeInto("#token", "not-the-token")
	b.click("#token-form button[type=submit]")
	b.waitText("#token-error", "That token was refused", "missing or wrong bearer token")
	b.screenshot("signin")
	b.typeInto("#token", adminToken)
	b.click("#token-form button[type=submit]")

	// The list, with the config file's webhook read-only.
	b.waitText(`tr[data-name="fromthefile"]`, "fromthefile", "config file", "enabled", "elsewhere:*", "push, delete", "none yet")
	if got := eval[string](b, `sessionStorage.getItem('regwebhook.adminToken') + ' ' + localStorage.length + ' ' + document.cookie`); got != adminToken+" 0 " {
		t.Errorf("storage after sign-in = %q, want the token in sessionStorage only", got)
	}

	// Create a webhook through the form; the API's validation message is
	// shown as it is, with the field marked.
	b.click("#new-webhook")
	b.waitFor("the form", `!!document.querySelector('#webhook-form')`)
	b.typeInto("#f-name", "pushhook")
	b.typeInto("#f-uri", "ftp://nowhere.example")
	b.click("#save")
	b.waitText("#form-error", `uri: "ftp://nowhere.example" must be an absolute http or https URL`)
	if !eval[bool](b, `document.querySelector('[data-field="uri"]').classList.contains('invalid')`) {
		t.Errorf("the uri field is not marked invalid")
	}
	b.screenshot("form")
	b.replaceText("#f-uri", ok.URL()+"/hooks/app")
	b.typeInto("#f-scope", "app:*")
	b.click("#add-header")
	b.typeInto(".header-row .header-name", "X-Team")
	b.typeInto(".header-row .header-value", "platform")
	b.click("#generate-secret")
	secret := eval[string](b, `document.querySelector('#f-secret').value`)
	if !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`).MatchString(secret) {
		t.Errorf("generated secret %q is not whsec_ + base64 of 32 bytes", secret)
	}
	b.click("#save")
	b.waitText("#view h1", "pushhook", "enabled")
	b.waitText("#settings", "app:*", "X-Team: ***", "set (Standard Webhooks signatures)")
	var conf api.Config
	client.call("GET", "/webhooks/pushhook/config", nil, &conf, http.StatusOK)
	if diff := cmp.Diff(api.Config{URI: ok.URL() + "/hooks/app", Headers: map[string]string{"X-Team": "platform"}, Secret: secret}, conf); diff != "" {
		t.Errorf("the webhook the form made (-want +got):\n%s", diff)
	}

	// A push with the real registry: the delivery shows up by itself, with
	// its request (secrets masked) and the receiver's answer.
	reg.PushImage(t, "app", "v1")
	ok.WaitFor(t, 1, stepTimeout)
	b.waitFor("the delivery", `!!document.querySelector('#events-list details.entry')`)
	b.click("#events-list details.entry summary")
	detail := b.waitText("#events-list details.entry[open]",
		"push", "200 OK", "Request", "POST", "X-Team", "***", "Webhook-Signature", `"repository": "app"`, `"tag": "v1"`, "Response")
	if strings.Contains(detail, "platform") || strings.Contains(detail, secret) {
		t.Errorf("the event detail shows a custom header value or the secret:\n%s", detail)
	}
	b.screenshot("event")
	b.do("narrow the window", chromedp.EmulateViewport(390, 844))
	b.screenshot("event-narrow")
	b.do("widen the window", chromedp.EmulateViewport(1280, 900))

	// Ping: the request and the response are shown at once.
	b.click("#ping")
	b.waitText("#ping-result", "ping", "200 OK", `"action": "ping"`)
	ok.WaitFor(t, 2, stepTimeout)

	// Disable.
	b.click("#toggle")
	b.waitText("#toggle", "Enable")
	b.waitText("#view h1", "disabled")
	var shown api.Webhook
	client.call("GET", "/webhooks/pushhook", nil, &shown, http.StatusOK)
	if shown.Status != rule.Disabled {
		t.Errorf("after Disable the API shows status %q", shown.Status)
	}

	// A hostile service URI: its answer is shown as text, in the ping, the
	// deliveries and the dead letters, and never runs.
	client.call("POST", "/webhooks", map[string]any{"name": "hostile", "uri": evil.srv.URL + "/x", "scope": "evil:*"}, nil, http.StatusCreated)
	b.do("open the hostile webhook", chromedp.Navigate(base+"/ui/#/webhooks/hostile"))
	b.waitText("#view h1", "hostile")
	b.click("#ping")
	b.waitText("#ping-result", "500 Internal Server Error", "X-Evil", markup)
	reg.PushImage(t, "evil", "v1")
	evil.waitRequests(t, 2)
	b.waitFor("the dead letter", `!!document.querySelector('#deadletters-list details.entry')`)
	// A failing webhook says since when, and why, as text.
	b.waitText("#settings", "Failing since", "Last error", "answered 500 Internal Server Error")
	b.click("#events-list details.entry summary")
	b.waitText("#events-list details.entry[open] .response", "500 Internal Server Error", "X-Evil", markup)
	if got := eval[string](b, `document.querySelector('#events-list details.entry[open] .response pre.body').textContent`); got != markup {
		t.Errorf("the response body shows %q, want the text %q", got, markup)
	}
	b.screenshot("hostile")

	// Redeliver the dead letter: the same delivery goes out again, marked.
	b.click("#deadletters-list details.entry summary")
	b.click("#deadletters-list details.entry[open] button.primary")
	got := evil.waitRequests(t, 3)
	if got[2].Get("X-Regwebhook-Redelivery") != "true" || got[2].Get("X-Regwebhook-Delivery") != got[1].Get("X-Regwebhook-Delivery") {
		t.Errorf("the redelivery came with delivery %q redelivery %q, want delivery %q redelivery true",
			got[2].Get("X-Regwebhook-Delivery"), got[2].Get("X-Regwebhook-Redelivery"), got[1].Get("X-Regwebhook-Delivery"))
	}
	// It failed again, so it is a dead letter again; purge them all.
	b.waitText("#deadletters", "Redeliver all (1)")
	b.waitFor("the second failed attempt", `document.querySelectorAll('#events-list details.entry').length >= 3`)
	b.click("#purge")
	b.waitFor("the confirmation", `document.querySelector('#confirm').open`)
	b.click("#confirm-ok")
	b.waitText("#deadletters", "No dead letters")
	if got := eval[string](b, `typeof window.pwned + ' ' + document.querySelectorAll('img[src="x"]').length`); got != "undefined 0" {
		t.Errorf("window.pwned and markup images: %q, want undefined and none", got)
	}
	// And were markup ever put in, the page's CSP would stop its script: an
	// inline script added to the page does not run, and is reported.
	eval[chromedp.Void](b, `(() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1'; document.body.append(s); })()`)
	if got := eval[string](b, `typeof window.inlineRan`); got != "undefined" {
		t.Errorf("an inline script ran despite the CSP: window.inlineRan is %s", got)
	}
	var problems []string
	for deadline := time.Now().Add(stepTimeout); len(problems) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		problems = b.takeProblems()
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "Content Security Policy") {
		t.Errorf("after an inline script was added the page reported %q, want one CSP violation", problems)
	}

	// The config file's webhook is read-only here.
	b.do("open the config file's webhook", chromedp.Navigate(base+"/ui/#/webhooks/fromthefile"))
	b.waitText("#read-only", "config file", "SIGHUP")
	if got := eval[bool](b, `!!document.querySelector('#delete, #edit, #toggle')`); got {
		t.Errorf("the config file's webhook offers edit, delete or disable")
	}

	// The list, wide and narrow.
	b.do("open the list", chromedp.Navigate(base+"/ui/#/"))
	b.waitText(`tr[data-name="pushhook"]`, "disabled", "succeeded", "app:*")
	b.waitText(`tr[data-name="hostile"]`, "failed", "500", "answered 500 Internal Server Error")
	b.screenshot("list")
	b.do("narrow the window", chromedp.EmulateViewport(390, 844))
	b.screenshot("list-narrow")
	b.do("widen the window", chromedp.EmulateViewport(1280, 900))

	// Delete, after a confirmation that can be cancelled.
	b.do("open pushhook", chromedp.Navigate(base+"/ui/#/webhooks/pushhook"))
	b.click("#delete")
	b.waitFor("the confirmation", `document.querySelector('#confirm').open`)
	b.click("#confirm-cancel")
	b.waitFor("the dialog to close", `!document.querySelector('#confirm').open`)
	client.call("GET", "/webhooks/pushhook", nil, nil, http.StatusOK)
	b.click("#delete")
	b.waitFor("the confirmation", `document.querySelector('#confirm').open`)
	b.click("#confirm-ok")
	b.waitText("#notice", "Deleted webhook pushhook")
	b.waitFor("the list without pushhook", `location.hash === '#/' && !!document.querySelector('tr[data-name="hostile"]') && !document.querySelector('tr[data-name="pushhook"]')`)
	client.call("GET", "/webhooks/pushhook", nil, nil, http.StatusNotFound)

	// Forgetting the token takes the page back to the prompt.
	b.click("#signout")
	b.waitFor("the token prompt", `!!document.querySelector('#token-form') && !document.querySelector('.list')`)
	if got := eval[bool](b, `sessionStorage.getItem('regwebhook.adminToken') === null`); !got {
		t.Errorf("the token is still in sessionStorage after Forget token")
	}
}

// With no admin.token configured the page works for a loopback client that
// calls regwebhook 127.0.0.1, with no prompt: every change it sends is
// application/json, as the API then requires (a delete too).
func TestWebPageOnLoopbackWithoutToken(t *testing.T) {
	ok := hooktest.New(t)
	srv := startServer(t, config.Default())
	base := "http://" + srv.Addr()
	b := startBrowser(t)

	b.do("open the page", chromedp.Navigate(base+"/ui/"))
	b.waitText("#empty", "No webhooks yet — create one, or add them to the config file")
	b.screenshot("empty")
	if got := eval[bool](b, `!!document.querySelector('#token-form') || document.querySelector('#signout').offsetParent !== null`); got {
		t.Errorf("the page asks for a token though none is configured")
	}
	b.click("#empty a.button")
	b.typeInto("#f-name", "loopback1")
	b.typeInto("#f-uri", ok.URL())
	b.click("#f-action-pull")
	b.click("#save")
	b.waitText("#view h1", "loopback1", "enabled")
	b.waitText("#settings", "every repository", "push, delete, pull")
	b.click("#ping")
	b.waitText("#ping-result", "200 OK")
	b.click("#edit")
	b.waitFor("the form, filled", `document.querySelector('#f-uri') && document.querySelector('#f-uri').value === `+jsString(ok.URL()))
	b.typeInto("#f-scope", "team/*:v1.*")
	b.do("choose disabled", chromedp.SetValue(chromedp.CSS("#f-status"), "disabled"))
	b.click("#save")
	b.waitText("#settings", "team/*:v1.*")
	b.waitText("#view h1", "disabled")
	b.click("#delete")
	b.waitFor("the confirmation", `document.querySelector('#confirm').open`)
	b.click("#confirm-ok")
	b.waitText("#empty", "No webhooks yet")
	client := apiClient{t: t, base: base}
	client.call("GET", "/webhooks/loopback1", nil, nil, http.StatusNotFound)
}
