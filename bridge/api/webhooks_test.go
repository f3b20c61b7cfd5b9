package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

const (
	testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// hookOne is a webhook with every secret a webhook can hold: header
	// values, the signing secret, and a URI whose path and query are secret.
	hookOne = `{"name":"hookone","uri":"https://hooks.example.com/services/T000/B000/XXXX?token=abc",
		"headers":{"Authorization":"Bearer s3cret","X-Team":"platform"},"secret":"` + testSecret + `","scope":"app:*"}`
)

// fromConfig is a webhook of the config file.
func fromConfig() *rule.Webhook {
	return &rule.Webhook{Name: "fromconfig", URI: "http://config.example.com/hook/path", Headers: map[string]string{"X-Key": "k"}}
}

// jsonOf decodes a JSON body generically, to compare field names and all.
func jsonOf(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// Create, show, list and get-config answer the JSON clients decode, with
// secrets masked everywhere but get-config.
func TestCreateShowListConfig(t *testing.T) {
	h := newHarness(t, options{config: []*rule.Webhook{fromConfig()}})
	a := h.want(http.StatusCreated, post(api.Prefix+"/webhooks", hookOne))
	if got := a.header.Get("Location"); got != "/api/v1/webhooks/hookone" {
		t.Errorf("Location %q", got)
	}
	wantHookOne := `{"name":"hookone","uri":"https://hooks.example.com/…","headers":{"Authorization":"***","X-Team":"***"},
		"actions":["push","delete"],"status":"enabled","scope":"app:*","format":"acr","secret":"***",
		"insecureSkipVerify":false,"source":"api"}`
	if diff := cmp.Diff(jsonOf(t, []byte(wantHookOne)), jsonOf(t, a.body)); diff != "" {
		t.Errorf("create answered (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(jsonOf(t, []byte(wantHookOne)), jsonOf(t, h.want(http.StatusOK, get(hookPath("hookone"))).body)); diff != "" {
		t.Errorf("show answered (-want +got):\n%s", diff)
	}
	wantList := `{"items":[
		{"name":"fromconfig","uri":"http://config.example.com/…","headers":{"X-Key":"***"},"actions":["push","delete"],
		 "status":"enabled","scope":"","format":"acr","insecureSkipVerify":false,"source":"config"},
		` + wantHookOne + `]}`
	if diff := cmp.Diff(jsonOf(t, []byte(wantList)), jsonOf(t, h.want(http.StatusOK, get(api.Prefix+"/webhooks")).body)); diff != "" {
		t.Errorf("list answered (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{
		"hookone": `{"uri":"https://hooks.example.com/services/T000/B000/XXXX?token=abc",
			"headers":{"Authorization":"Bearer s3cret","X-Team":"platform"},"secret":"` + testSecret + `"}`,
		"fromconfig": `{"uri":"http://config.example.com/hook/path","headers":{"X-Key":"k"}}`,
	} {
		a := h.want(http.StatusOK, get(hookPath(name, "/config")))
		if diff := cmp.Diff(jsonOf(t, []byte(want)), jsonOf(t, a.body)); diff != "" {
			t.Errorf("get-config of %s answered (-want +got):\n%s", name, diff)
		}
		if got := a.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("get-config of %s: Cache-Control %q, want no-store", name, got)
		}
	}
}

// The list comes in pages sorted by name; next leads to the following page
// until there is none.
func TestListPages(t *testing.T) {
	h := newHarness(t, options{config: []*rule.Webhook{fromConfig()}})
	for _, n := range []string{"hookc", "hooka", "hooke", "hookb", "hookd"} {
		h.create(`{"name":"` + n + `","uri":"http://a.example.com/"}`)
	}
	var pages [][]string
	after := ""
	for range 10 {
		var l api.WebhookList
		h.want(http.StatusOK, get(api.Prefix+"/webhooks?limit=2&after="+after)).decode(t, &l)
		var names []string
		for _, w := range l.Items {
			names = append(names, w.Name)
		}
		pages = append(pages, names)
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	want := [][]string{{"fromconfig", "hooka"}, {"hookb", "hookc"}, {"hookd", "hooke"}}
	if diff := cmp.Diff(want, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	// Past the end: an empty list, not null.
	a := h.want(http.StatusOK, get(api.Prefix+"/webhooks?after=zzzzz"))
	if got := strings.TrimSpace(string(a.body)); got != `{"items":[]}` {
		t.Errorf("list past the end: %s", got)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=ten"} {
		a := h.want(http.StatusBadRequest, get(api.Prefix+"/webhooks?"+q))
		var e api.ErrorResponse
		a.decode(t, &e)
		if e.Error.Code != api.CodeInvalid || e.Error.Field != "limit" || !strings.Contains(e.Error.Message, "limit") {
			t.Errorf("list?%s: %s", q, a.body)
		}
	}
}

// PATCH changes the fields given only: headers and secret replaced whole,
// {} and "" clear them; the rest stays.
func TestUpdate(t *testing.T) {
	h := newHarness(t, options{})
	h.create(hookOne)
	cfg := func() api.Config {
		var c api.Config
		h.want(http.StatusOK, get(hookPath("hookone", "/config"))).decode(t, &c)
		return c
	}
	steps := []struct {
		body       string
		wantShow   string
		wantConfig api.Config
	}{
		{`{"status":"disabled","actions":["push","pull"],"name":"hookone"}`,
			`{"name":"hookone","uri":"https://hooks.example.com/…","headers":{"Authorization":"***","X-Team":"***"},
			"actions":["push","pull"],"status":"disabled","scope":"app:*","format":"acr","secret":"***",
			"insecureSkipVerify":false,"source":"api"}`,
			api.Config{URI: "https://hooks.example.com/services/T000/B000/XXXX?token=abc",
				Headers: map[string]string{"Authorization": "Bearer s3cret", "X-Team": "platform"}, Secret: testSecret}},
		{`{"headers":{"X-New":"1"},"uri":"http://other.example.com","scope":"","format":"cloudevents","insecureSkipVerify":true}`,
			`{"name":"hookone","uri":"http://other.example.com","headers":{"X-New":"***"},
			"actions":["push","pull"],"status":"disabled","scope":"","format":"cloudevents","secret":"***",
			"insecureSkipVerify":true,"source":"api"}`,
			api.Config{URI: "http://other.example.com", Headers: map[string]string{"X-New": "1"}, Secret: testSecret}},
		{`{"headers":{},"secret":""}`,
			`{"name":"hookone","uri":"http://other.example.com","actions":["push","pull"],"status":"disabled","scope":"",
			"format":"cloudevents","insecureSkipVerify":true,"source":"api"}`,
			api.Config{URI: "http://other.example.com"}},
		{`{}`,
			`{"name":"hookone","uri":"http://other.example.com","actions":["push","pull"],"status":"disabled","scope":"",
			"format":"cloudevents","insecureSkipVerify":true,"source":"api"}`,
			api.Config{URI: "http://other.example.com"}},
	}
	for _, s := range steps {
		a := h.want(http.StatusOK, patch(hookPath("hookone"), s.body))
		if diff := cmp.Diff(jsonOf(t, []byte(s.wantShow)), jsonOf(t, a.body)); diff != "" {
			t.Errorf("PATCH %s answered (-want +got):\n%s", s.body, diff)
		}
		if diff := cmp.Diff(s.wantConfig, cfg()); diff != "" {
			t.Errorf("after PATCH %s, get-config (-want +got):\n%s", s.body, diff)
		}
	}
}

// Every error answers {"error":{"code","message"}} with its status; invalid
// ones name the field.
func TestErrors(t *testing.T) {
	h := newHarness(t, options{config: []*rule.Webhook{fromConfig()}})
	h.create(hookOne)
	create := func(body string) call { return post(api.Prefix+"/webhooks", body) }
	for _, c := range []struct {
		name   string
		call   call
		status int
		code   string
		field  string
	}{
		{"create: not an object", create(`[1]`), 400, api.CodeInvalid, "body"},
		{"create: null", create(`null`), 400, api.CodeInvalid, "body"},
		{"create: no body", create(``), 400, api.CodeInvalid, "body"},
		{"create: bad JSON", create(`{"name":"newhook",`), 400, api.CodeInvalid, "body"},
		{"create: trailing data", create(`{"name":"newhook","uri":"http://a.example.com/"} {}`), 400, api.CodeInvalid, "body"},
		{"create: unknown field", create(`{"name":"newhook","uri":"http://a.example.com/","colour":"red"}`), 400, api.CodeInvalid, "colour"},
		{"create: source", create(`{"name":"newhook","uri":"http://a.example.com/","source":"config"}`), 400, api.CodeInvalid, "source"},
		{"create: id", create(`{"name":"newhook","uri":"http://a.example.com/","id":"x"}`), 400, api.CodeInvalid, "id"},
		{"create: actions not a list", create(`{"name":"newhook","uri":"http://a.example.com/","actions":"push"}`), 400, api.CodeInvalid, "actions"},
		{"create: bad action", create(`{"name":"newhook","uri":"http://a.example.com/","actions":["push","tag"]}`), 400, api.CodeInvalid, "actions"},
		{"create: header not a string", create(`{"name":"newhook","uri":"http://a.example.com/","headers":{"A":1}}`), 400, api.CodeInvalid, "headers"},
		{"create: headers null", create(`{"name":"newhook","uri":"http://a.example.com/","headers":null}`), 400, api.CodeInvalid, "headers"},
		{"create: masked header", create(`{"name":"newhook","uri":"http://a.example.com/","headers":{"A":"***"}}`), 400, api.CodeInvalid, "headers"},
		{"create: masked secret", create(`{"name":"newhook","uri":"http://a.example.com/","secret":"***"}`), 400, api.CodeInvalid, "secret"},
		{"create: bool as string", create(`{"name":"newhook","uri":"http://a.example.com/","insecureSkipVerify":"yes"}`), 400, api.CodeInvalid, "insecureSkipVerify"},
		{"create: bad uri", create(`{"name":"newhook","uri":"ftp://a.example.com/"}`), 400, api.CodeInvalid, "uri"},
		{"create: bad name", create(`{"name":"New-Hook","uri":"http://a.example.com/"}`), 400, api.CodeInvalid, "name"},
		{"create: bad scope", create(`{"name":"newhook","uri":"http://a.example.com/","scope":"a:["}`), 400, api.CodeInvalid, "scope"},
		{"create: name of an API webhook", create(`{"name":"hookone","uri":"http://a.example.com/"}`), 409, api.CodeNameTaken, ""},
		{"create: name of a config webhook", create(`{"name":"fromconfig","uri":"http://a.example.com/"}`), 409, api.CodeNameTaken, ""},
		{"create: too large", create(`{"name":"newhook","uri":"http://a.example.com/","scope":"` + strings.Repeat("a", 64<<10) + `"}`),
			413, api.CodeTooLarge, ""},
		{"create: not JSON", call{method: "POST", path: api.Prefix + "/webhooks", body: `{}`,
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}, 415, api.CodeUnsupportedMedia, ""},
		{"update: rename", patch(hookPath("hookone"), `{"name":"hooktwo"}`), 400, api.CodeInvalid, "name"},
		{"update: masked header", patch(hookPath("hookone"), `{"headers":{"Authorization":"***"}}`), 400, api.CodeInvalid, "headers"},
		{"update: masked secret", patch(hookPath("hookone"), `{"secret":"***"}`), 400, api.CodeInvalid, "secret"},
		{"update: unknown field", patch(hookPath("hookone"), `{"enabled":false}`), 400, api.CodeInvalid, "enabled"},
		{"update: null", patch(hookPath("hookone"), `{"scope":null}`), 400, api.CodeInvalid, "scope"},
		{"update: empty status", patch(hookPath("hookone"), `{"status":""}`), 400, api.CodeInvalid, "status"},
		{"update: no actions", patch(hookPath("hookone"), `{"actions":[]}`), 400, api.CodeInvalid, "actions"},
		{"update: config webhook", patch(hookPath("fromconfig"), `{"status":"disabled"}`), 409, api.CodeReadOnly, ""},
		{"delete: config webhook", del(hookPath("fromconfig")), 409, api.CodeReadOnly, ""},
		{"events: bad limit", get(hookPath("hookone", "/events?limit=-1")), 400, api.CodeInvalid, "limit"},
		{"dead letters: bad limit", get(hookPath("hookone", "/deadletters?limit=x")), 400, api.CodeInvalid, "limit"},
		{"redeliver: unknown delivery", post(hookPath("hookone", "/deliveries/nosuchdelivery/redeliver"), ""), 404, api.CodeNotFound, ""},
		{"unknown call", get(api.Prefix + "/things"), 404, api.CodeNotFound, ""},
		{"unknown method", call{method: "PUT", path: hookPath("hookone"), body: "{}"}, 405, api.CodeMethodNotAllowed, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(c.call)
			var e api.ErrorResponse
			a.decode(t, &e)
			if a.status != c.status || e.Error.Code != c.code || e.Error.Field != c.field || e.Error.Message == "" {
				t.Errorf("got %d %s, want %d with code %q, field %q", a.status, a.body, c.status, c.code, c.field)
			}
			if c.field != "" && c.field != "body" && !strings.Contains(e.Error.Message, c.field) {
				t.Errorf("message %q does not name the field %q", e.Error.Message, c.field)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// Read-only says what to do.
	var e api.ErrorResponse
	h.do(del(hookPath("fromconfig"))).decode(t, &e)
	if !strings.Contains(e.Error.Message, "config file") {
		t.Errorf("read_only message %q does not say to edit the config file", e.Error.Message)
	}
	// Nothing was made or changed by the refused calls.
	var l api.WebhookList
	h.want(http.StatusOK, get(api.Prefix+"/webhooks")).decode(t, &l)
	if len(l.Items) != 2 {
		t.Errorf("after refused calls the list has %d webhooks, want 2: %+v", len(l.Items), l.Items)
	}
}

// Every call on a webhook that does not exist answers 404.
func TestUnknownWebhook(t *testing.T) {
	h := newHarness(t, options{})
	for _, c := range []call{
		get(hookPath("nosuchhook")),
		patch(hookPath("nosuchhook"), `{"status":"disabled"}`),
		del(hookPath("nosuchhook")),
		get(hookPath("nosuchhook", "/config")),
		post(hookPath("nosuchhook", "/ping"), ""),
		get(hookPath("nosuchhook", "/events")),
		get(hookPath("nosuchhook", "/deadletters")),
		del(hookPath("nosuchhook", "/deadletters")),
		post(hookPath("nosuchhook", "/deadletters/redeliver"), ""),
		post(hookPath("nosuchhook", "/deliveries/x/redeliver"), ""),
	} {
		a := h.do(c)
		if a.status != http.StatusNotFound || a.errorCode(t) != api.CodeNotFound || !strings.Contains(string(a.body), "nosuchhook") {
			t.Errorf("%s: got %d %s, want 404 naming the webhook", a.call, a.status, a.body)
		}
	}
}

// Delete answers 204, and the webhook is gone.
func TestDelete(t *testing.T) {
	h := newHarness(t, options{})
	h.create(hookOne)
	a := h.want(http.StatusNoContent, del(hookPath("hookone")))
	if len(a.body) != 0 {
		t.Errorf("delete answered a body: %s", a.body)
	}
	h.want(http.StatusNotFound, get(hookPath("hookone")))
	h.want(http.StatusNotFound, del(hookPath("hookone")))
	h.create(hookOne) // the name is free again
}

// A store that cannot be reached answers 503 unavailable.
func TestStoreUnavailable(t *testing.T) {
	h := newHarness(t, options{})
	h.create(hookOne)
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []call{
		get(api.Prefix + "/webhooks"),
		get(hookPath("hookone")),
		get(hookPath("hookone", "/events")),
		post(api.Prefix+"/webhooks", `{"name":"hooktwo","uri":"http://a.example.com/"}`),
		patch(hookPath("hookone"), `{"status":"disabled"}`),
		del(hookPath("hookone")),
		post(hookPath("hookone", "/deadletters/redeliver"), ""),
	} {
		a := h.do(c)
		if a.status != http.StatusServiceUnavailable || a.errorCode(t) != api.CodeUnavailable {
			t.Errorf("%s: got %d %s, want 503 unavailable", a.call, a.status, a.body)
		}
	}
}
