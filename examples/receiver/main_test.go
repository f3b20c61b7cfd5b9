package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/deliver"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// The example of the Standard Webhooks specification (and of its reference
// libraries' tests): what any Standard Webhooks sender signs, this receiver
// accepts.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = "1614265330"
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func specHeader(signature, timestamp string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", timestamp)
	h.Set("webhook-signature", signature)
	return h
}

func TestVerifySpecExample(t *testing.T) {
	specTime := time.Unix(1614265330, 0)
	tests := []struct {
		name    string
		secret  string
		header  http.Header
		body    string
		now     time.Time
		wantErr string // "" for a signature that verifies
	}{
		{name: "the spec's example", secret: specSecret, header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime},
		{name: "secret without whsec_", secret: strings.TrimPrefix(specSecret, "whsec_"), header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime},
		{name: "one of several signatures", secret: specSecret, header: specHeader("v1,bm9wZQ== "+specSignature, specTimestamp), body: specBody, now: specTime},
		{name: "one of two secrets (rotation)", secret: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + " " + specSecret, header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime},
		{name: "clock within five minutes", secret: specSecret, header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime.Add(4 * time.Minute)},
		{name: "body changed", secret: specSecret, header: specHeader(specSignature, specTimestamp), body: `{"test": 2432232315}`, now: specTime, wantErr: "no v1 signature matches"},
		{name: "other secret", secret: "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)), header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime, wantErr: "no v1 signature matches"},
		{name: "other version", secret: specSecret, header: specHeader("v1a,"+strings.TrimPrefix(specSignature, "v1,"), specTimestamp), body: specBody, now: specTime, wantErr: "no v1 signature matches"},
		{name: "replayed later", secret: specSecret, header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime.Add(6 * time.Minute), wantErr: "off the clock"},
		{name: "from the future", secret: specSecret, header: specHeader(specSignature, specTimestamp), body: specBody, now: specTime.Add(-6 * time.Minute), wantErr: "off the clock"},
		{name: "timestamp not a number", secret: specSecret, header: specHeader(specSignature, "2021-02-25"), body: specBody, now: specTime, wantErr: "not unix seconds"},
		{name: "unsigned", secret: specSecret, header: http.Header{}, body: specBody, now: specTime, wantErr: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := newVerifier(tt.secret, func() time.Time { return tt.now })
			if err != nil {
				t.Fatal(err)
			}
			err = v.verify(tt.header, []byte(tt.body))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tt.wantErr == "") != (got == "") || !strings.Contains(got, tt.wantErr) {
				t.Errorf("verify: %q, want an error holding %q", got, tt.wantErr)
			}
		})
	}
}

func TestBadSecret(t *testing.T) {
	if _, err := newVerifier("whsec_not base64!", time.Now); err == nil {
		t.Error("a secret that is not base64 was taken")
	}
	if v, err := newVerifier("  ", time.Now); v != nil || err != nil {
		t.Errorf("blank secret: %v, %v; want no verifier", v, err)
	}
}

func newSecret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// regwebhook's own Sender delivers to the receiver: a request signed with
// the receiver's secret is answered 200, one signed with another secret or
// not signed is answered 401 (which regwebhook retries), and each is logged
// with its method, path, headers and payload.
func TestVerifiesRegwebhookRequests(t *testing.T) {
	secret, other := newSecret(t), newSecret(t)
	tests := []struct {
		name       string
		hookSecret string
		wantStatus int
		wantLog    string
	}{
		{name: "signed with the secret", hookSecret: secret, wantStatus: 200, wantLog: "signature: ok"},
		{name: "rotating to the secret", hookSecret: other + " " + secret, wantStatus: 200, wantLog: "signature: ok"},
		{name: "signed with another secret", hookSecret: other, wantStatus: 401, wantLog: "signature: BAD, answered 401: no v1 signature matches the secret"},
		{name: "not signed", hookSecret: "", wantStatus: 401, wantLog: "signature: BAD, answered 401: webhook-id, webhook-timestamp or webhook-signature missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			v, err := newVerifier(secret, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(newHandler(v, log.New(&logs, "", 0)))
			defer srv.Close()

			hook := &rule.Webhook{ID: "hook-id", Name: "demohook01", URI: srv.URL + "/hooks/registry", Secret: tt.hookSecret}
			hook.Defaults()
			if err := hook.Validate(); err != nil {
				t.Fatal(err)
			}
			sender := deliver.NewSender(deliver.SenderParams{Version: "test"})
			defer sender.CloseIdleConnections()
			payload := `{"id":"ev-1","action":"push","target":{"repository":"team/app","tag":"v1"}}`
			entry, out := sender.Send(context.Background(), hook, store.Job{
				ID: "delivery-1", WebhookID: hook.ID, EventID: "ev-1", Action: "push",
				Payload: payload, ContentType: "application/json", Attempts: 1,
			})
			if entry.Response == nil {
				t.Fatalf("no answer: %s", entry.Error)
			}
			if entry.Response.StatusCode != tt.wantStatus {
				t.Errorf("answered %d, want %d", entry.Response.StatusCode, tt.wantStatus)
			}
			if (out.Kind == deliver.Success) != (tt.wantStatus == 200) {
				t.Errorf("regwebhook classified the answer as %v", out.Kind)
			}
			got := logs.String()
			for _, want := range []string{
				"POST /hooks/registry\n",
				"  X-Regwebhook-Delivery: delivery-1\n",
				"  X-Regwebhook-Webhook: demohook01\n",
				"  " + tt.wantLog + "\n",
				`"repository": "team/app"`,
			} {
				if !strings.Contains(got, want) {
					t.Errorf("log lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

// Every request is logged as one block; a repeated delivery id is pointed
// out, and a request that is not a POST is refused.
func TestLogsRepeatsAndRefusals(t *testing.T) {
	var logs bytes.Buffer
	srv := httptest.NewServer(newHandler(nil, log.New(&logs, "", 0)))
	defer srv.Close()
	post := func() int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/x?q=1", strings.NewReader("not json"))
		req.Header.Set("X-Regwebhook-Delivery", "d-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	resp, err := http.Get(srv.URL + "/hooks/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := []int{post(), post(), resp.StatusCode}
	if diff := cmp.Diff([]int{200, 200, 405}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	text := logs.String()
	for _, want := range []string{
		"POST /hooks/x?q=1\n",
		"signature: not checked (WEBHOOK_SECRET unset)",
		"  not json\n",
		"repeat: this delivery id came before",
		"GET /hooks/x\n  ",
		"refused: webhooks are POSTed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "repeat:"); n != 1 {
		t.Errorf("%d repeats logged, want 1:\n%s", n, text)
	}
}
