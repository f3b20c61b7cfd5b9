package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// pushEvent is a registry event of a manifest pushed to app with the given
// id and tag, both put in as they are (bytes that are not UTF-8 too); extra
// is spliced into the event object (`,"k":v`).
func pushEvent(id, tag, extra string) string {
	return fmt.Sprintf(`{"id":"%s","timestamp":"2026-11-26T10:00:00Z","action":"push",`+
		`"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064x","size":1,"length":1,`+
		`"repository":"app","tag":"%s"},"request":{"id":"r","host":"registry.example.com","method":"PUT"}%s}`, id, len(id), tag, extra)
}

// envelope wraps events in an envelope.
func envelope(events ...string) string {
	return `{"events":[` + strings.Join(events, ",") + `]}`
}

// A bad-input table for the receiver, through the server's own listener:
// the answer each input gets, and which of the events it carries are
// delivered. The server stays up through all of them, and a valid envelope
// after them is delivered, with nothing more.
func TestReceiverBadInput(t *testing.T) {
	sink := hooktest.New(t)
	cfg := config.Default()
	cfg.Webhooks = []*rule.Webhook{{Name: "everything", URI: sink.URL() + "/hook",
		Actions: []event.Action{event.Push, event.Delete, event.Pull}}}
	srv := start(t, cfg)
	base := "http://" + srv.Addr()
	const v2 = "application/vnd.docker.distribution.events.v2+json"
	valid := envelope(pushEvent("row-valid", "v1", ""))
	deep := strings.Repeat("[", 100_000)

	tests := []struct {
		name        string
		contentType string // v2 when empty
		body        string
		status      int
		code        string   // error code of a refusal
		counts      string   // the body of a 200
		delivered   []string // ids of the events delivered for it
	}{
		{name: "truncated envelope", body: valid[:len(valid)/2], status: 400, code: "invalid"},
		{name: "truncated after the array", body: valid[:len(valid)-1], status: 400, code: "invalid"},
		{name: "empty body", body: "", status: 400, code: "invalid"},
		{name: "events a string", body: `{"events":"[]"}`, status: 400, code: "invalid"},
		{name: "events a number", body: `{"events":1}`, status: 400, code: "invalid"},
		{name: "events an object", body: `{"events":{}}`, status: 400, code: "invalid"},
		{name: "envelope an array", body: `[` + pushEvent("row-array", "v1", "") + `]`, status: 400, code: "invalid"},
		{name: "events of the wrong types", body: `{"events":[1,"x",true,null,[]]}`, status: 200, counts: `{"accepted":0,"dropped":5}`},
		{name: "fields of the wrong types", body: envelope(
			strings.Replace(pushEvent("row-idnum", "v1", ""), `"id":"row-idnum"`, `"id":7`, 1),
			strings.Replace(pushEvent("row-time", "v1", ""), `"2026-11-26T10:00:00Z"`, `"yesterday"`, 1),
			strings.Replace(pushEvent("row-target", "v1", ""), `"target":{`, `"target":"app","x":{`, 1),
			strings.Replace(pushEvent("row-size", "v1", ""), `"size":1`, `"size":"big"`, 1),
			pushEvent("row-typed-ok", "v1", "")),
			status: 200, counts: `{"accepted":1,"dropped":4}`, delivered: []string{"row-typed-ok"}},
		{name: "huge numbers in known fields", body: envelope(
			strings.Replace(pushEvent("row-1e400", "v1", ""), `"size":1`, `"size":1e400`, 1),
			strings.Replace(pushEvent("row-2p64", "v1", ""), `"length":1`, `"length":18446744073709551616`, 1)),
			status: 200, counts: `{"accepted":0,"dropped":2}`},
		{name: "huge numbers in unknown fields", body: `{"n":1e400,"events":[` +
			pushEvent("row-huge-unknown", "v1", `,"n":18446744073709551616,"m":-1e400`) + `]}`,
			status: 200, counts: `{"accepted":1,"dropped":0}`, delivered: []string{"row-huge-unknown"}},
		{name: "a huge number as the body", body: `1e400`, status: 400, code: "invalid"},
		{name: "invalid UTF-8 in a string", body: envelope(pushEvent("row-utf8-\xff\xfe", "v1", "")),
			status: 200, counts: `{"accepted":1,"dropped":0}`, delivered: []string{"row-utf8-\ufffd\ufffd"}},
		{name: "invalid UTF-8 outside strings", body: `{"events":[]` + "\xff}", status: 400, code: "invalid"},
		{name: "NUL after the envelope", body: `{"events":[]}` + "\x00", status: 400, code: "invalid"},
		{name: "a 10 MB body", body: `{"events":[],"pad":"` + strings.Repeat("x", 10<<20) + `"}`, status: 413, code: "too_large"},
		{name: "100k [", body: deep, status: 400, code: "invalid"},
		{name: "100k [ in the events", body: `{"events":` + deep, status: 400, code: "invalid"},
		{name: "deep nesting in an unknown field", body: `{"events":[],"x":` + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + `}`,
			status: 400, code: "invalid"},
		{name: "some nesting in an unknown field of an event", body: envelope(pushEvent("row-nested", "v1",
			`,"x":`+strings.Repeat("[", 500)+strings.Repeat("]", 500))),
			status: 200, counts: `{"accepted":1,"dropped":0}`, delivered: []string{"row-nested"}},
		{name: "unknown fields", body: `{"future":{"x":1},"events":[` + pushEvent("row-unknown", "v1", `,"future":[1,{"y":null}]`) + `]}`,
			status: 200, counts: `{"accepted":1,"dropped":0}`, delivered: []string{"row-unknown"}},
		{name: "empty events", body: `{"events":[]}`, status: 200, counts: `{"accepted":0,"dropped":0}`},
		{name: "events null", body: `{"events":null}`, status: 400, code: "invalid"},
		{name: "null", body: `null`, status: 400, code: "invalid"},
		{name: "byte order mark", body: "\xef\xbb\xbf" + envelope(pushEvent("row-bom", "v1", "")), status: 400, code: "invalid"},
		// Duplicate keys: the last one counts, as in the registry's own
		// (Go) decoding of what it sent.
		{name: "events given twice", body: `{"events":[` + pushEvent("row-dup-first", "v1", "") + `],"events":[` +
			pushEvent("row-dup-last", "v1", "") + `]}`,
			status: 200, counts: `{"accepted":1,"dropped":0}`, delivered: []string{"row-dup-last"}},
		{name: "id given twice", body: envelope(strings.Replace(pushEvent("row-id-last", "v1", ""), `{"id":`, `{"id":"row-id-first","id":`, 1)),
			status: 200, counts: `{"accepted":1,"dropped":0}`, delivered: []string{"row-id-last"}},
		{name: "a form", contentType: "application/x-www-form-urlencoded", body: "events=%5B%5D", status: 415, code: "unsupported_media_type"},
	}
	var want []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" {
				ct = v2
			}
			status, body := post(t, base+"/v1/notifications", ct, tt.body)
			if status != tt.status {
				t.Fatalf("answered %d %s, want %d", status, body, tt.status)
			}
			if tt.status == http.StatusOK {
				if got := strings.TrimSpace(body); got != tt.counts {
					t.Errorf("answered %s, want %s", got, tt.counts)
				}
				want = append(want, tt.delivered...)
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("answered %s, want error code %q with a message", body, tt.code)
			}
		})
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := get(t, base+path); status != http.StatusOK {
			t.Errorf("after the bad input, %s answers %d %s", path, status, body)
		}
	}
	if status, body := post(t, base+"/v1/notifications", v2, valid); status != http.StatusOK {
		t.Fatalf("the valid envelope after the bad input: %d %s", status, body)
	}
	want = append(want, "row-valid")
	sink.WaitFor(t, len(want), 20*time.Second)
	waitQueueEmpty(t, srv) // so nothing more is on its way
	var got []string
	for _, r := range sink.Requests() {
		if !json.Valid(r.Body) {
			t.Errorf("delivered a body that is not JSON: %q", r.Body)
		}
		var p event.Event
		r.Decode(t, &p)
		got = append(got, p.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events delivered (-want +got):\n%s", diff)
	}
}

// post sends body to url and returns the answer's status and body.
func post(t *testing.T, url, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read the answer: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// get fetches url and returns the answer's status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read the answer: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
