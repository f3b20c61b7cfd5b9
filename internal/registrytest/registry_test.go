package registrytest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regwebhook/regwebhook/internal/hooktest"
	"github.com/regwebhook/regwebhook/internal/registrytest"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	blobType    = "application/octet-stream"
)

// envelope is the part of a notification body this test looks at.
type envelope struct {
	Events []struct {
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Digest     string `json:"digest"`
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
			References []any  `json:"references"`
		} `json:"target"`
		Request struct {
			ID     string `json:"id"`
			Method string `json:"method"`
		} `json:"request"`
		Source struct {
			Addr string `json:"addr"`
		} `json:"source"`
	} `json:"events"`
}

// event is one notification reduced to what a step asserts. Blob digests
// are not known to the test: they read "blob".
type event struct {
	Action, MediaType, Digest, Tag, Repo, Method string
	requestID                                    string
}

// stream reads the notifications a receiver got, step by step.
type stream struct {
	rcv  *hooktest.Receiver
	seen int
}

// next waits for n more notification requests and returns their events.
// Each request must carry exactly one event and the endpoint's headers.
func (s *stream) next(t *testing.T, n int) []event {
	t.Helper()
	reqs := s.rcv.WaitFor(t, s.seen+n, 10*time.Second)[s.seen:]
	s.seen += n
	var out []event
	for _, q := range reqs[:n] {
		if got := q.Header.Get("Authorization"); got != "Bearer s3cret" {
			t.Errorf("Authorization = %q, want %q", got, "Bearer s3cret")
		}
		if got, want := q.Header.Get("Content-Type"), "application/vnd.docker.distribution.events.v2+json"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
		var env envelope
		q.Decode(t, &env)
		if len(env.Events) != 1 {
			t.Fatalf("request carries %d events, want 1: %s", len(env.Events), q.Body)
		}
		e := env.Events[0]
		ev := event{e.Action, e.Target.MediaType, e.Target.Digest, e.Target.Tag, e.Target.Repository, e.Request.Method, e.Request.ID}
		if ev.MediaType == blobType {
			ev.Digest = "blob"
		}
		out = append(out, ev)
	}
	return out
}

// same compares events as a multiset: the registry's client pushes blobs
// and index children concurrently, and tag deletes come in no fixed order.
func same(t *testing.T, what string, want, got []event) {
	t.Helper()
	sortEvents := cmpopts.SortSlices(func(a, b event) bool {
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	if diff := cmp.Diff(want, got, sortEvents, cmpopts.IgnoreUnexported(event{})); diff != "" {
		t.Errorf("%s: events (-want +got):\n%s", what, diff)
	}
}

func TestNotificationsOfUserActions(t *testing.T) {
	rcv := hooktest.New(t)
	reg := registrytest.Start(t, registrytest.Options{NotifyURL: rcv.URL() + "/v1/notifications", NotifyToken: "s3cret"})
	s := &stream{rcv: rcv}
	blobPush := event{"push", blobType, "blob", "", "app", "PUT", ""}

	d1 := reg.PushImage(t, "app", "v1")
	got := s.next(t, 3)
	same(t, "push app:v1", []event{blobPush, blobPush, {"push", ociManifest, d1, "v1", "app", "PUT", ""}}, got)
	if last := got[2]; last.Tag != "v1" {
		t.Errorf("push app:v1: last event %+v, want the manifest push with the tag", last)
	}

	reg.Tag(t, "app", d1, "v2")
	same(t, "tag app@d1 as v2", []event{
		{"pull", ociManifest, d1, "", "app", "GET", ""},
		{"push", ociManifest, d1, "v2", "app", "PUT", ""},
	}, s.next(t, 2))

	idx, children := reg.PushIndex(t, "multi", "v1", 2)
	if len(children) != 2 {
		t.Fatalf("PushIndex returned %d children, want 2", len(children))
	}
	multiBlob := event{"push", blobType, "blob", "", "multi", "PUT", ""}
	got = s.next(t, 7)
	same(t, "push index multi:v1", []event{
		multiBlob, multiBlob, multiBlob, multiBlob,
		{"push", ociManifest, children[0], "", "multi", "PUT", ""},
		{"push", ociManifest, children[1], "", "multi", "PUT", ""},
		{"push", ociIndex, idx, "v1", "multi", "PUT", ""},
	}, got)
	if last := got[6]; last.Digest != idx {
		t.Errorf("push index: last event %+v, want the index push", last)
	}

	reg.DeleteManifest(t, "app", d1)
	got = s.next(t, 3)
	same(t, "delete app@d1", []event{
		{"delete", "", d1, "", "app", "DELETE", ""},
		{"delete", "", "", "v1", "app", "DELETE", ""},
		{"delete", "", "", "v2", "app", "DELETE", ""},
	}, got)
	if got[0].Digest != d1 {
		t.Errorf("delete app@d1: first event %+v, want the digest delete", got[0])
	}
	for _, e := range got[1:] {
		if e.requestID != got[0].requestID {
			t.Errorf("delete app@d1: tag delete has request id %q, want the digest delete's %q", e.requestID, got[0].requestID)
		}
	}

	d3 := reg.PushImage(t, "app", "v3")
	s.next(t, 3)
	reg.DeleteTag(t, "app", "v3")
	same(t, "delete app:v3", []event{{"delete", "", "", "v3", "app", "DELETE", ""}}, s.next(t, 1))

	if got := reg.Pull(t, "app", d3); got != d3 {
		t.Errorf("Pull(app, %s) = %s, want the same digest", d3, got)
	}
	if got := reg.Pull(t, "multi", "v1"); got != idx {
		t.Errorf("Pull(multi, v1) = %s, want index digest %s", got, idx)
	}
	same(t, "pulls", []event{
		{"pull", ociManifest, d3, "", "app", "GET", ""},
		{"pull", ociIndex, idx, "v1", "multi", "GET", ""},
	}, s.next(t, 2))

	d4 := reg.PushImageByDigest(t, "app")
	same(t, "push by digest", []event{blobPush, blobPush, {"push", ociManifest, d4, "", "app", "PUT", ""}}, s.next(t, 3))
}

// TestOptions checks IncludeReferences, no token, and source.addr.
func TestOptions(t *testing.T) {
	rcv := hooktest.New(t)
	reg := registrytest.Start(t, registrytest.Options{NotifyURL: rcv.URL(), IncludeReferences: true})

	d := reg.PushImage(t, "app", "v1")
	reqs := rcv.WaitFor(t, 3, 10*time.Second)
	var env envelope
	reqs[2].Decode(t, &env)
	if len(env.Events) != 1 || env.Events[0].Target.Digest != d {
		t.Fatalf("third notification is not the manifest push of %s: %s", d, reqs[2].Body)
	}
	// One reference each for the config and the layer.
	if n := len(env.Events[0].Target.References); n != 2 {
		t.Errorf("manifest push has %d references, want 2: %s", n, reqs[2].Body)
	}
	// Like the registry binary's, source.addr is hostname:port.
	_, port, _ := strings.Cut(reg.Host(), ":")
	if got := env.Events[0].Source.Addr; !strings.HasSuffix(got, ":"+port) {
		t.Errorf("source.addr = %q, want the registry's port %s", got, port)
	}
	if got := reqs[2].Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q without a token, want none", got)
	}
}

func TestNoNotifyURL(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	d := reg.PushImage(t, "app", "v1")
	if got := reg.Pull(t, "app", "v1"); got != d {
		t.Errorf("Pull(app, v1) = %s, want pushed digest %s", got, d)
	}
	// The catalog lists repositories only with the binary's config
	// defaults, which Start must have applied.
	resp, err := http.Get(reg.URL() + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"repositories":["app"]}` {
		t.Errorf("GET /v2/_catalog: %s %s, want 200 {\"repositories\":[\"app\"]}", resp.Status, body)
	}
}
