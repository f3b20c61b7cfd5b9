package event_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// reflected is encoding/json's encoding of ev by reflection, as events were
// encoded before Event had MarshalJSON.
func reflected(ev *event.Event) ([]byte, error) {
	type plain event.Event
	return json.Marshal((*plain)(ev))
}

// sameAsReflected fails t unless json.Marshal(ev) and ev.AppendJSON give
// reflection's bytes, or fail where it fails.
func sameAsReflected(t *testing.T, name string, ev *event.Event) {
	t.Helper()
	want, wantErr := reflected(ev)
	got, gotErr := json.Marshal(ev)
	appended, appendErr := ev.AppendJSON([]byte("x"))
	switch {
	case wantErr != nil:
		if gotErr == nil || appendErr == nil {
			t.Errorf("%s: got %s, %v and %s, %v; encoding/json refuses it: %v", name, got, gotErr, appended, appendErr, wantErr)
		}
	case gotErr != nil || appendErr != nil:
		t.Errorf("%s: errors %v, %v; encoding/json encodes it as %s", name, gotErr, appendErr, want)
	case !bytes.Equal(got, want):
		t.Errorf("%s: MarshalJSON\n got %s\nwant %s", name, got, want)
	case !bytes.Equal(appended, append([]byte("x"), want...)):
		t.Errorf("%s: AppendJSON after x\n got %s\nwant x%s", name, appended, want)
	}
}

// The acr payload is the bytes encoding/json made of an event before:
// receivers see the same body.
func TestMarshalJSONIsEncodingJSONs(t *testing.T) {
	full := event.Event{
		ID:        "ev-1",
		Timestamp: time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.FixedZone("", 3600)),
		Action:    event.Delete,
		Target: event.Target{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1234, Digest: "sha256:abc",
			Length: 1234, Repository: "team/app", Tag: "v1<&>", Tags: []string{"a", "b\"c", "é☃\u2028"},
		},
		Request: event.Request{ID: "r-1", Host: "registry:5000", Method: "DELETE", UserAgent: "go\x00\xff"},
		Raw:     json.RawMessage(`{"not":"encoded"}`),
	}
	onlyRepo := event.Event{Target: event.Target{Repository: "r"}}
	negative := full
	negative.Target.Size, negative.Target.Length = -1, -9
	noTags := full
	noTags.Target.Tags = []string{}
	onlyHost := event.Event{ID: "x", Request: event.Request{Host: "h"}}
	farFuture := full
	farFuture.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

	for name, ev := range map[string]event.Event{
		"full": full, "empty": {}, "only repository": onlyRepo, "negative sizes": negative,
		"empty tags": noTags, "only host": onlyHost, "year 10000": farFuture,
	} {
		sameAsReflected(t, name, &ev)
	}
}

// FuzzMarshalJSONLikeEncodingJSON checks MarshalJSON against reflection for
// any strings, numbers and times an event can hold.
func FuzzMarshalJSONLikeEncodingJSON(f *testing.F) {
	f.Add("ev-1", "push", "application/json", int64(12), "sha256:abc", int64(12), "team/app", "v1", "a\nb", "r-1", "host:5000", "PUT", "ua", int64(1764244800), int64(5), 3600)
	f.Add("", "", "", int64(0), "", int64(0), "", "", "", "", "", "", "", int64(0), int64(0), 0)
	f.Add("\"<>&\u2028", "\xff", "\x00", int64(-1), "\t", int64(-1), "é", "☃", "\n\n", "\\", "/", "\x7f", "\u2029", int64(253402300800), int64(-1), -86399)
	f.Fuzz(func(t *testing.T, id, action, mediaType string, size int64, digest string, length int64,
		repo, tag, tags, reqID, host, method, ua string, sec, nsec int64, offset int) {
		ev := event.Event{
			ID: id, Action: event.Action(action),
			Timestamp: time.Unix(sec, nsec).In(time.FixedZone("", offset)),
			Target:    event.Target{MediaType: mediaType, Size: size, Digest: digest, Length: length, Repository: repo, Tag: tag},
			Request:   event.Request{ID: reqID, Host: host, Method: method, UserAgent: ua},
		}
		if tags != "" {
			ev.Target.Tags = strings.Split(tags, "\n")
		}
		sameAsReflected(t, "event", &ev)
	})
}

// BenchmarkMarshalJSON is the acr payload of a pushed manifest, encoded by
// AppendJSON and by reflection.
func BenchmarkMarshalJSON(b *testing.B) {
	ev := event.Event{
		ID: "9a8f7e6d-5c4b-4a39-8271-605f4e3d2c1b", Timestamp: time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC), Action: event.Push,
		Target: event.Target{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1234,
			Digest: "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b", Length: 1234,
			Repository: "team/app", Tag: "build-20261127-1",
		},
		Request: event.Request{ID: "b1e2c3d4-0000-4000-8000-123456789abc", Host: "registry.example.com:5000", Method: "PUT", UserAgent: "containerd/v2.1.0"},
	}
	b.Run("appended", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if _, err := ev.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reflected(&ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
