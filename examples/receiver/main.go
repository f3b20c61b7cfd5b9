// Command receiver is the webhook receiver of the docker compose demo: it
// logs every request it gets — method, path, headers and payload — and,
// when WEBHOOK_SECRET is set, checks the request's Standard Webhooks
// signature as regwebhook signs it, answering 401 to a request whose
// signature is missing, wrong or more than five minutes off the clock.
//
// It uses the standard library only, so that it builds on its own (its
// Dockerfile copies this one file):
//
//	go run ./examples/receiver                                   # listens on :8080
//	ADDR=127.0.0.1:9000 WEBHOOK_SECRET=whsec_… go run ./examples/receiver
//
// Deliveries are at least once: a request that repeats a delivery id seen
// before is logged as a repeat (and answered 200 again).
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxBody bounds a request body; regwebhook's payloads are a few KiB.
const maxBody = 1 << 20

// tolerance is how far webhook-timestamp may be from the receiver's clock,
// as the Standard Webhooks libraries allow: it limits replays.
const tolerance = 5 * time.Minute

func main() {
	logger := log.New(os.Stdout, "", log.LstdFlags)
	if err := run(logger); err != nil {
		logger.Fatal("receiver: ", err)
	}
}

func run(logger *log.Logger) error {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	v, err := newVerifier(os.Getenv("WEBHOOK_SECRET"), time.Now)
	if err != nil {
		return fmt.Errorf("WEBHOOK_SECRET: %w", err)
	}
	srv := &http.Server{Addr: addr, Handler: newHandler(v, logger), ReadHeaderTimeout: 10 * time.Second}
	// As a container's first process, SIGTERM does nothing unless handled.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if v == nil {
		logger.Printf("receiver: listening on %s; signatures not checked (WEBHOOK_SECRET unset)", addr)
	} else {
		logger.Printf("receiver: listening on %s; checking signatures", addr)
	}
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler logs each request and answers 200, or 401 when its signature
// does not verify.
type handler struct {
	verify *verifier // nil: signatures are not checked
	log    *log.Logger

	mu   sync.Mutex
	seen map[string]bool // delivery ids, to point out repeats
}

func newHandler(v *verifier, logger *log.Logger) *handler {
	return &handler{verify: v, log: logger, seen: map[string]bool{}}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%s %s\n", r.Method, r.URL.RequestURI())
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&out, "  %s: %s\n", k, strings.Join(r.Header[k], ", "))
	}

	status := http.StatusOK
	switch {
	case r.Method != http.MethodPost:
		status = http.StatusMethodNotAllowed
		out.WriteString("  refused: webhooks are POSTed\n")
	case len(body) > maxBody:
		status = http.StatusRequestEntityTooLarge
		fmt.Fprintf(&out, "  refused: body over %d bytes\n", maxBody)
	case h.verify == nil:
		out.WriteString("  signature: not checked (WEBHOOK_SECRET unset)\n")
	default:
		if err := h.verify.verify(r.Header, body); err != nil {
			status = http.StatusUnauthorized
			fmt.Fprintf(&out, "  signature: BAD, answered 401: %v\n", err)
		} else {
			out.WriteString("  signature: ok\n")
		}
	}
	if id := r.Header.Get("X-Regwebhook-Delivery"); id != "" && status == http.StatusOK && h.repeat(id) {
		out.WriteString("  repeat: this delivery id came before (deliveries are at least once)\n")
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "  ", "  ") == nil {
		out.WriteString("  ")
		out.Write(pretty.Bytes())
	} else if len(body) > 0 {
		out.WriteString("  ")
		out.Write(body[:min(len(body), 4096)])
	}
	h.log.Print(out.String())
	w.WriteHeader(status)
}

// repeat records a delivery id and reports whether it was seen before. The
// record is cleared when it grows large: this is a demo, not a dedupe store.
func (h *handler) repeat(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen[id] {
		return true
	}
	if len(h.seen) >= 10000 {
		clear(h.seen)
	}
	h.seen[id] = true
	return false
}

// verifier checks Standard Webhooks signatures: webhook-signature holds one
// or more space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
// keyed with the base64-decoded secret.
type verifier struct {
	keys [][]byte
	now  func() time.Time
}

// newVerifier decodes secrets: "whsec_" and base64, several separated by
// spaces while one is being rotated out. No secret gives a nil verifier.
func newVerifier(secrets string, now func() time.Time) (*verifier, error) {
	fields := strings.Fields(secrets)
	if len(fields) == 0 {
		return nil, nil
	}
	v := &verifier{now: now}
	for _, s := range fields {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			return nil, fmt.Errorf("a secret is whsec_ and base64: %w", err)
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// verify returns nil when one of the request's signatures is the HMAC of
// id.timestamp.body under one of the keys, and the timestamp is within
// tolerance of the clock.
func (v *verifier) verify(h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("webhook-id, webhook-timestamp or webhook-signature missing")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not unix seconds", ts)
	}
	if d := v.now().Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s off the clock (more than %s)", d.Round(time.Second), tolerance)
	}
	for _, key := range v.keys {
		want := sign(key, id, ts, body)
		for _, sig := range strings.Fields(sigs) {
			version, b64, ok := strings.Cut(sig, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return errors.New("no v1 signature matches the secret")
}

// sign returns HMAC-SHA256(key, id.timestamp.body).
func sign(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return m.Sum(nil)
}
