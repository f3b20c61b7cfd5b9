package deliver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/rule"
)

// The test vector the Standard Webhooks specification's reference libraries
// publish (github.com/standard-webhooks/standard-webhooks,
// libraries/go/webhook_test.go TestWebhookSign, and the same values in every
// other language's tests): this secret, id, timestamp and body sign to this
// header value.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = "1614265330"
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// verifyStandardWebhook checks a request as the Standard Webhooks
// specification ("Verifying webhook authenticity") tells a consumer to,
// written from its text and apart from Sign: the webhook-id,
// webhook-timestamp (integer Unix seconds) and webhook-signature headers
// are all required; the timestamp must be within tolerance of now; the
// secret is the base64 after "whsec_"; the signed content is
// "{msg_id}.{timestamp}.{payload}" with the body as received; the signature
// header is a space-delimited list of "<version>,<base64>" of which a "v1"
// one must equal the HMAC-SHA256, compared in constant time. Other versions
// (v1a, asymmetric) are skipped.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, header := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || header == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not an integer: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %s is %v away from now", ts, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(header, " ") {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no v1 signature matches")
}

// Sign reproduces the specification's published signature byte for byte.
func TestSignStandardWebhooksVector(t *testing.T) {
	keys, err := rule.DecodeSecrets(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(keys, vectorID, vectorTimestamp, []byte(vectorBody)); got != vectorSignature {
		t.Errorf("Sign of the specification's test vector = %q, want %q", got, vectorSignature)
	}
}

// The verifier above, checked against the published vector: it takes the
// vector's headers and refuses each thing an attacker or a bug could change.
// (A verifier that accepted everything would make the next test worthless.)
func TestVerifierAgainstTheVector(t *testing.T) {
	at, _ := strconv.ParseInt(vectorTimestamp, 10, 64)
	now := time.Unix(at, 0).Add(time.Minute)
	headers := func(change func(http.Header)) http.Header {
		h := http.Header{}
		h.Set("webhook-id", vectorID)
		h.Set("webhook-timestamp", vectorTimestamp)
		h.Set("webhook-signature", vectorSignature)
		if change != nil {
			change(h)
		}
		return h
	}
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   string
		now    time.Time
		valid  bool
	}{
		{name: "the vector", header: headers(nil), valid: true},
		{name: "among other signatures (rotation, v1a)", header: headers(func(h http.Header) {
			h.Set("webhook-signature", "v1a,bm9wZQ== v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vectorSignature)
		}), valid: true},
		{name: "the body re-serialized", header: headers(nil), body: `{"test":2432232314}`},
		{name: "another id", header: headers(func(h http.Header) { h.Set("webhook-id", "msg_other") })},
		{name: "another timestamp", header: headers(func(h http.Header) { h.Set("webhook-timestamp", "1614265331") })},
		{name: "another secret", secret: secretB, header: headers(nil)},
		{name: "the signature under another version", header: headers(func(h http.Header) {
			h.Set("webhook-signature", strings.Replace(vectorSignature, "v1,", "v2,", 1))
		})},
		{name: "no signature", header: headers(func(h http.Header) { h.Del("webhook-signature") })},
		{name: "a replay an hour later", header: headers(nil), now: now.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, body, when := tt.secret, tt.body, tt.now
			if secret == "" {
				secret = vectorSecret
			}
			if body == "" {
				body = vectorBody
			}
			if when.IsZero() {
				when = now
			}
			err := verifyStandardWebhook(secret, tt.header, []byte(body), when, 5*time.Minute)
			if (err == nil) != tt.valid {
				t.Errorf("verify: %v, want valid %v", err, tt.valid)
			}
		})
	}
}

// What a receiver gets verifies as the specification says, with each of the
// two secrets of a rotation; a retry of the same delivery keeps webhook-id
// and is signed afresh with its own timestamp.
func TestSentRequestsVerify(t *testing.T) {
	c, srv := newCapture(t, ok)
	hook := &rule.Webhook{ID: "wh-1", Name: "myhook01", URI: srv.URL, Status: rule.Enabled, Secret: vectorSecret + " " + secretB}
	clock := fixedNow
	s := newTestSender(SenderParams{Now: func() time.Time { return clock }})
	for attempt := 1; attempt <= 2; attempt++ {
		job := testJob()
		job.Attempts = attempt
		if _, out := s.Send(context.Background(), hook, job); out.Kind != Success {
			t.Fatalf("attempt %d: %v", attempt, out)
		}
		clock = clock.Add(90 * time.Second)
	}
	reqs := c.got()
	if len(reqs) != 2 {
		t.Fatalf("the receiver got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		sentAt := fixedNow.Add(time.Duration(i) * 90 * time.Second)
		for _, secret := range []string{vectorSecret, secretB} {
			if err := verifyStandardWebhook(secret, r.header, r.body, sentAt.Add(time.Second), 5*time.Minute); err != nil {
				t.Errorf("request %d with secret %.12s…: %v", i, secret, err)
			}
		}
		if err := verifyStandardWebhook(secretA[:len(secretA)-4]+"AAAA", r.header, r.body, sentAt, 5*time.Minute); err == nil {
			t.Errorf("request %d verifies with a secret the webhook does not have", i)
		}
		if got, want := r.header.Get("webhook-timestamp"), strconv.FormatInt(sentAt.Unix(), 10); got != want {
			t.Errorf("request %d: webhook-timestamp %s, want the attempt's time %s", i, got, want)
		}
		if got := r.header.Get("webhook-id"); got != "delivery-1" || got != r.header.Get(HeaderDelivery) {
			t.Errorf("request %d: webhook-id %q, want the delivery id %q", i, got, "delivery-1")
		}
	}
	if reqs[0].header.Get("webhook-signature") == reqs[1].header.Get("webhook-signature") {
		t.Errorf("a retry reuses its first attempt's signature, want one for its own timestamp")
	}
}
