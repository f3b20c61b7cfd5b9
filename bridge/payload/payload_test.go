package payload

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

func testEvent() *event.Event {
	return &event.Event{
		ID:        "ev1",
		Timestamp: time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC),
		Action:    event.Delete,
		Target:    event.Target{Repository: "team/app", Digest: "sha256:abc", MediaType: "application/vnd.oci.image.manifest.v1+json", Tags: []string{"v1", "v2"}},
		Request:   event.Request{ID: "r1", Host: "registry.example.com", Method: "DELETE", UserAgent: "crane"},
		Raw:       json.RawMessage(`{"id":"ev1","action":"delete","target":{"repository":"team/app","digest":"sha256:abc","mediaType":""}}`),
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func TestRender(t *testing.T) {
	acr := map[string]any{
		"id": "ev1", "timestamp": "2026-11-26T10:00:00.123456789Z", "action": "delete",
		"target": map[string]any{
			"repository": "team/app", "digest": "sha256:abc",
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "tags": []any{"v1", "v2"},
		},
		"request": map[string]any{"id": "r1", "host": "registry.example.com", "method": "DELETE", "useragent": "crane"},
	}
	tests := []struct {
		format      rule.Format
		contentType string
		want        map[string]any
	}{
		{rule.ACR, "application/json", acr},
		{rule.CloudEvents, "application/cloudevents+json", map[string]any{
			"specversion": "1.0", "id": "ev1", "source": "//registry.example.com",
			"type": "io.regwebhook.image.delete", "subject": "team/app@sha256:abc",
			"time": "2026-11-26T10:00:00.123456789Z", "datacontenttype": "application/json", "data": acr,
		}},
		// The registry's own bytes, unenriched: no tags, empty media type kept.
		{rule.Envelope, "application/vnd.docker.distribution.events.v2+json", map[string]any{
			"events": []any{map[string]any{"id": "ev1", "action": "delete",
				"target": map[string]any{"repository": "team/app", "digest": "sha256:abc", "mediaType": ""}}},
		}},
	}
	for _, tt := range tests {
		body, ct, err := Render(tt.format, testEvent())
		if err != nil {
			t.Fatalf("%s: %v", tt.format, err)
		}
		if ct != tt.contentType {
			t.Errorf("%s: content type %q, want %q", tt.format, ct, tt.contentType)
		}
		if diff := cmp.Diff(tt.want, decode(t, body)); diff != "" {
			t.Errorf("%s payload (-want +got):\n%s", tt.format, diff)
		}
	}
	if _, _, err := Render("xml", testEvent()); err == nil {
		t.Error("unknown format rendered")
	}
}

func TestPing(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	body, ct, err := Ping(rule.ACR, "p1", now)
	if err != nil || ct != "application/json" {
		t.Fatal(ct, err)
	}
	if diff := cmp.Diff(map[string]any{"id": "p1", "timestamp": "2026-11-26T10:00:00Z", "action": "ping"}, decode(t, body)); diff != "" {
		t.Errorf("acr ping (-want +got):\n%s", diff)
	}
	body, ct, err = Ping(rule.CloudEvents, "p1", now)
	if err != nil || ct != "application/cloudevents+json" {
		t.Fatal(ct, err)
	}
	if got := decode(t, body)["type"]; got != "io.regwebhook.ping" {
		t.Errorf("cloudevents ping type %v", got)
	}
}
