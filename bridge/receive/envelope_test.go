package receive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const v2 = "application/vnd.docker.distribution.events.v2+json"

// pushBody is the captured push of app:v1 with its event id replaced.
func pushBody(t *testing.T, id string) []byte {
	t.Helper()
	c := mustLoad(t, "push-manifest-by-tag")
	return []byte(strings.ReplaceAll(compact(t, c.Requests[0].Body), "01a218ff-f893-73b4-a099-3f5c0c3fff2b", id))
}

// compact returns a fixture's body without spaces, for editing as text.
func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Each row of SPEC §2's table: the answer, and that a refused envelope
// stores nothing while a valid one after it is still taken.
func TestEnvelopeAnswers(t *testing.T) {
	valid := string(pushBody(t, "ev-valid"))
	tests := []struct {
		name        string
		token       string
		header      http.Header
		body        string
		status      int
		code        string // error code, for refusals
		accepted    int
		dropped     int
		metricLabel string // refusal counted under this code
	}{
		{name: "accepted", header: http.Header{"Content-Type": {v2}}, body: valid, status: 200, accepted: 1},
		{name: "empty events", header: http.Header{"Content-Type": {v2}}, body: `{"events":[]}`, status: 200},
		{name: "v1 content type", header: http.Header{"Content-Type": {"application/vnd.docker.distribution.events.v1+json"}}, body: valid, status: 200, accepted: 1},
		{name: "plain json with charset", header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: valid, status: 200, accepted: 1},
		{name: "unknown fields ignored", header: http.Header{"Content-Type": {v2}}, body: `{"events":[],"future":{"x":1}}`, status: 200},
		{name: "token right", token: "tok", header: http.Header{"Content-Type": {v2}, "Authorization": {"Bearer tok"}}, body: valid, status: 200, accepted: 1},
		{name: "token missing", token: "tok", header: http.Header{"Content-Type": {v2}}, body: valid, status: 401, code: "unauthorized"},
		{name: "token wrong", token: "tok", header: http.Header{"Content-Type": {v2}, "Authorization": {"Bearer tok2"}}, body: valid, status: 401, code: "unauthorized"},
		{name: "auth before content type", token: "tok", header: http.Header{"Content-Type": {"text/plain"}}, body: valid, status: 401, code: "unauthorized"},
		{name: "content type text", header: http.Header{"Content-Type": {"text/plain"}}, body: valid, status: 415, code: "unsupported_media_type"},
		{name: "content type missing", header: http.Header{}, body: valid, status: 415, code: "unsupported_media_type"},
		{name: "too large", header: http.Header{"Content-Type": {v2}}, body: `{"events":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`, status: 413, code: "too_large"},
		{name: "not json", header: http.Header{"Content-Type": {v2}}, body: `events`, status: 400, code: "invalid"},
		{name: "empty object", header: http.Header{"Content-Type": {v2}}, body: `{}`, status: 400, code: "invalid"},
		{name: "array", header: http.Header{"Content-Type": {v2}}, body: `[1]`, status: 400, code: "invalid"},
		{name: "events not array", header: http.Header{"Content-Type": {v2}}, body: `{"events":{}}`, status: 400, code: "invalid"},
		{name: "events null", header: http.Header{"Content-Type": {v2}}, body: `{"events":null}`, status: 400, code: "invalid"},
		{name: "invalid events dropped, valid kept", header: http.Header{"Content-Type": {v2}},
			body: `{"events":[1, {"action":"push","target":{"repository":"app"}}, {"id":"x","target":{"repository":"app"}},` +
				`{"id":"y","action":"push","target":{}}, {"id":"z","action":"push","timestamp":"yesterday","target":{"repository":"app"}},` +
				`{"id":"w","action":"push","target":{"repository":"app","size":"big"}},` + valid[strings.Index(valid, "[")+1:],
			status: 200, accepted: 1, dropped: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.token)
			w := e.post([]byte(tt.body), tt.header)
			if w.Code != tt.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.code != "" {
				var got struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Error.Code != tt.code || got.Error.Message == "" {
					t.Errorf("body %s, want error code %q with a message", w.Body, tt.code)
				}
				if n := e.counts("regwebhook_envelopes_rejected_total")[tt.code]; n != 1 {
					t.Errorf("refusals counted under %q: %d, want 1", tt.code, n)
				}
				if jobs := e.jobs(); len(jobs) != 0 {
					t.Errorf("a refused envelope stored jobs: %v", jobs)
				}
				// Nothing else is lost: the next valid envelope is taken.
				h := http.Header{"Content-Type": {v2}}
				if tt.token != "" {
					h.Set("Authorization", "Bearer "+tt.token)
				}
				e.postOK([]byte(valid), h, 1, 0)
				if jobs := e.jobs(); len(jobs) != 3 {
					t.Errorf("valid envelope after a refusal: %d jobs, want 3", len(jobs))
				}
				return
			}
			var got struct{ Accepted, Dropped int }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Accepted != tt.accepted || got.Dropped != tt.dropped {
				t.Errorf("body %s, want accepted %d dropped %d", w.Body, tt.accepted, tt.dropped)
			}
			if jobs := e.jobs(); len(jobs) != 3*tt.accepted {
				t.Errorf("%d jobs, want %d", len(jobs), 3*tt.accepted)
			}
		})
	}
}

func TestInvalidEventsAreCountedAndLogged(t *testing.T) {
	e := newEnv(t, "")
	e.postOK([]byte(`{"events":[{"id":"x","target":{"repository":"app"}}]}`), nil, 0, 1)
	if n := e.counts("regwebhook_events_dropped_total")["invalid"]; n != 1 {
		t.Errorf("invalid events counted: %d, want 1", n)
	}
	var logged bool
	for _, entry := range e.logs.AllEntries() {
		if entry.Message == "invalid event dropped" && strings.Contains(entry.Data["event"].(string), `"id":"x"`) {
			logged = true
		}
	}
	if !logged {
		t.Error("the invalid event's JSON was not logged")
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, "")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/notifications", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q, want 405 Allow=POST", w.Code, w.Header().Get("Allow"))
	}
}

// A store that cannot commit makes the receiver answer 503, so the registry
// retries the envelope later.
func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t, "")
	e.store.Close()
	w := e.post(pushBody(t, "ev-1"), nil)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"unavailable"`) {
		t.Errorf("closed store: %d %s, want 503 unavailable", w.Code, w.Body)
	}
}

// The registry re-sends an event it thinks was not taken; it is enqueued
// once, whether the copies come one after the other or at the same time.
func TestDuplicateEnvelopes(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		e := newEnv(t, "")
		e.postOK(pushBody(t, "ev-dup"), nil, 1, 0)
		e.postOK(pushBody(t, "ev-dup"), nil, 1, 0)
		if got := len(e.jobs()); got != 3 {
			t.Errorf("%d jobs, want 3 (one per webhook)", got)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		e := newEnv(t, "")
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if w := e.post(pushBody(t, "ev-dup"), nil); w.Code != http.StatusOK {
					t.Errorf("post: %d %s", w.Code, w.Body)
				}
			}()
		}
		wg.Wait()
		if got := len(e.jobs()); got != 3 {
			t.Errorf("%d jobs, want 3 (one per webhook)", got)
		}
	})
}

// A manifest the index knows, deleted by digest while two tags point at it:
// webhooks that take every tag get the digest delete with its media type and
// tags, then each tag delete with the digest filled in (N+1 deliveries).
func TestDigestDeleteFromIndex(t *testing.T) {
	e := newEnv(t, "")
	del := mustLoad(t, "delete-manifest")
	digest := "sha256:ae2197af226f6e74d01ec98a60d9cc70cb087c34c1e31ac3ff09d13e523578a0"
	push := string(pushBody(t, "push-v1"))
	push = strings.ReplaceAll(push, "sha256:02097980afce18e8a00ddd101072ba72091fdc54ed6fb21141b623c2610332c1", digest)
	e.postOK([]byte(push), nil, 1, 0)
	e.postOK([]byte(strings.ReplaceAll(strings.ReplaceAll(push, `"tag":"v1"`, `"tag":"v2"`), "push-v1", "push-v2")), nil, 1, 0)
	e.jobs() // take the pushes out of the way
	e.replay(del)
	const oci = " oci.image.manifest.v1+json"
	want := []job{
		{"appalltags", "delete", "app:v1@ae2197af" + oci},
		{"appalltags", "delete", "app:v2@ae2197af" + oci},
		{"appalltags", "delete", "app@ae2197af tags=v1,v2" + oci},
		{"appv1only", "delete", "app:v1@ae2197af" + oci},
		{"everything", "delete", "app:v1@ae2197af" + oci},
		{"everything", "delete", "app:v2@ae2197af" + oci},
		{"everything", "delete", "app@ae2197af tags=v1,v2" + oci},
	}
	if diff := cmp.Diff(want, e.jobs()); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
	// The registry retries the digest delete: it is not dropped as unknown,
	// and nothing is enqueued twice.
	w := e.post(del.Requests[0].Body, del.Requests[0].Headers)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"accepted":1,"dropped":0}` {
		t.Errorf("retried digest delete: %d %s", w.Code, w.Body)
	}
	if jobs := e.jobs(); len(jobs) != 0 {
		t.Errorf("retried digest delete enqueued again: %v", jobs)
	}
}

// A tag pushed to a new digest moves: its later delete carries the new digest.
func TestTagMoves(t *testing.T) {
	e := newEnv(t, "")
	first := mustLoad(t, "push-manifest-by-tag")
	over := mustLoad(t, "push-overwrite-tag")
	e.replay(first)
	e.replay(over)
	e.jobs()
	del := strings.ReplaceAll(compact(t, mustLoad(t, "delete-tag").Requests[0].Body), `"tag":"v2"`, `"tag":"v1"`)
	e.postOK([]byte(del), nil, 1, 0)
	const oci = " oci.image.manifest.v1+json"
	want := []job{
		{"appalltags", "delete", "app:v1@0ebe3d6a" + oci},
		{"appv1only", "delete", "app:v1@0ebe3d6a" + oci},
		{"everything", "delete", "app:v1@0ebe3d6a" + oci},
	}
	if diff := cmp.Diff(want, e.jobs()); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
}

// The acr payload has the fields and names of SPEC §3.
func TestACRPayload(t *testing.T) {
	e := newEnv(t, "")
	e.replay(mustLoad(t, "push-manifest-by-tag"))
	res, err := e.store.Lease(context.Background(), e.leaseAll())
	if err != nil || len(res.Leases) == 0 {
		t.Fatalf("lease: %v %v", res.Leases, err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Leases[0].Payload), &got); err != nil {
		t.Fatal(err)
	}
	wantPayload := map[string]any{
		"id":        "01a218ff-f893-73b4-a099-3f5c0c3fff2b",
		"timestamp": "2026-11-26T17:55:58.227243398Z",
		"action":    "push",
		"target": map[string]any{
			"mediaType":  "application/vnd.oci.image.manifest.v1+json",
			"size":       555.0,
			"digest":     "sha256:02097980afce18e8a00ddd101072ba72091fdc54ed6fb21141b623c2610332c1",
			"length":     555.0,
			"repository": "app",
			"tag":        "v1",
		},
		"request": map[string]any{
			"id":        "01a218ff-f890-72ce-a5c9-2f234fe77bd4",
			"host":      "127.0.0.1:45091",
			"method":    "PUT",
			"useragent": "testclient go-containerregistry/v0.22.1",
		},
	}
	if diff := cmp.Diff(wantPayload, got); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if ct := res.Leases[0].ContentType; ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}
