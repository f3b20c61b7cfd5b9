package rule

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/event"
)

func valid() Webhook {
	w := Webhook{Name: "ci01hook", URI: "https://ci.example.com/hook"}
	w.Defaults()
	return w
}

func secret(n int) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n)))
}

func TestWebhookDefaults(t *testing.T) {
	w := Webhook{Name: "ci01hook", URI: "http://x"}
	w.Defaults()
	if len(w.Actions) != 2 || w.Actions[0] != event.Push || w.Actions[1] != event.Delete {
		t.Errorf("default actions = %v, want [push delete]", w.Actions)
	}
	if w.Status != Enabled || w.Format != ACR {
		t.Errorf("defaults: status %q format %q, want enabled acr", w.Status, w.Format)
	}
	if err := w.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestWebhookValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Webhook)
		want   string // "" for valid
	}{
		{"valid", func(*Webhook) {}, ""},
		{"name too short", func(w *Webhook) { w.Name = "abcd" }, `name: "abcd" must be 5 to 50 lowercase letters and digits`},
		{"name 5 chars", func(w *Webhook) { w.Name = "abcde" }, ""},
		{"name 50 chars", func(w *Webhook) { w.Name = strings.Repeat("a", 50) }, ""},
		{"name 51 chars", func(w *Webhook) { w.Name = strings.Repeat("a", 51) }, `name: "` + strings.Repeat("a", 51) + `" must be 5 to 50 lowercase letters and digits`},
		{"name upper", func(w *Webhook) { w.Name = "CiHook1" }, `name: "CiHook1" must be 5 to 50 lowercase letters and digits`},
		{"name dash", func(w *Webhook) { w.Name = "ci-hook" }, `name: "ci-hook" must be 5 to 50 lowercase letters and digits`},
		{"uri relative", func(w *Webhook) { w.URI = "/hook" }, `uri: "/hook" must be an absolute http or https URL`},
		{"uri ftp", func(w *Webhook) { w.URI = "ftp://x/hook" }, `uri: "ftp://x/hook" must be an absolute http or https URL`},
		{"uri empty", func(w *Webhook) { w.URI = "" }, `uri: "" must be an absolute http or https URL`},
		{"header ok", func(w *Webhook) { w.Headers = map[string]string{"Authorization": "Bearer x", "X-Env": "prod"} }, ""},
		{"header bad name", func(w *Webhook) { w.Headers = map[string]string{"Bad Name": "x"} }, `headers: "Bad Name" is not a valid header name`},
		{"header host", func(w *Webhook) { w.Headers = map[string]string{"host": "x"} }, `headers: "host" is reserved`},
		{"header x-regwebhook", func(w *Webhook) { w.Headers = map[string]string{"X-Regwebhook-Delivery": "x"} }, `headers: "X-Regwebhook-Delivery" is reserved`},
		{"header webhook-", func(w *Webhook) { w.Headers = map[string]string{"Webhook-Signature": "x"} }, `headers: "Webhook-Signature" is reserved`},
		{"header CRLF", func(w *Webhook) { w.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }, `headers: value of "X-A" must not contain CR or LF`},
		{"actions empty", func(w *Webhook) { w.Actions = []event.Action{} }, `actions: must name at least one of push, delete, pull`},
		{"actions bad", func(w *Webhook) { w.Actions = []event.Action{"push", "mount"} }, `actions: "mount" is not one of push, delete, pull`},
		{"actions twice", func(w *Webhook) { w.Actions = []event.Action{"push", "push"} }, `actions: "push" is listed twice`},
		{"actions pull", func(w *Webhook) { w.Actions = []event.Action{"pull"} }, ""},
		{"status bad", func(w *Webhook) { w.Status = "on" }, `status: "on" is not enabled or disabled`},
		{"scope bad", func(w *Webhook) { w.Scope = "app:" }, `scope: "app:" has an empty tag; use app:* for every tag`},
		{"format bad", func(w *Webhook) { w.Format = "xml" }, `format: "xml" is not one of acr, cloudevents, envelope`},
		{"secret ok", func(w *Webhook) { w.Secret = secret(32) }, ""},
		{"secret rotation", func(w *Webhook) { w.Secret = secret(32) + " " + secret(24) }, ""},
		{"secret short", func(w *Webhook) { w.Secret = secret(23) }, `secret: must hold 24 to 64 bytes, has 23`},
		{"secret long", func(w *Webhook) { w.Secret = secret(65) }, `secret: must hold 24 to 64 bytes, has 65`},
		{"secret prefix", func(w *Webhook) { w.Secret = "s3cret" }, `secret: must start with whsec_`},
		{"secret three", func(w *Webhook) { w.Secret = secret(32) + " " + secret(32) + " " + secret(32) }, `secret: must be one secret, or two separated by a space`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := valid()
			tt.change(&w)
			err := w.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}
