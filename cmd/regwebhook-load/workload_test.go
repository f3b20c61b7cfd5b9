package main

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// Each generated envelope is the captured one with its own id, repository,
// tag and digest, and the receiver finds its number in it.
func TestEnvelope(t *testing.T) {
	w, err := newWorkload("abc123xy", 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{0, 7, 123456} {
		body := w.envelope(nil, seq)
		raws, err := event.ParseEnvelope(body)
		if err != nil || len(raws) != 1 {
			t.Fatalf("envelope %d: %d events, %v:\n%s", seq, len(raws), err, body)
		}
		n, err := event.Parse(raws[0])
		if err != nil {
			t.Fatal(err)
		}
		got := []string{n.ID, n.Action, n.Target.Repository, n.Target.Tag, string(n.Target.Digest), n.Target.URL, n.Request.ID, n.Target.MediaType}
		repo := fmt.Sprintf("loadabc123xy/g%d", seq%3)
		digest := fmt.Sprintf("sha256:%064x", seq)
		want := []string{fmt.Sprint("abc123xy-", seq), "push", repo, fmt.Sprint("t", seq), digest,
			"http://127.0.0.1:45091/v2/" + repo + "/manifests/" + digest, fmt.Sprint("req-abc123xy-", seq),
			"application/vnd.oci.image.manifest.v1+json"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("envelope %d (-want +got):\n%s", seq, diff)
		}
		if got, ok := seqOf(body, w.run); !ok || got != seq {
			t.Errorf("seqOf(envelope %d) = %d, %v", seq, got, ok)
		}
	}
}

func TestPercentile(t *testing.T) {
	s := make([]int64, 1000)
	for i := range s {
		s[i] = int64(i + 1)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}} {
		if got, _ := percentile(s, c.q); got != c.want {
			t.Errorf("percentile(1..1000, %v) = %d, want %d", c.q, got, c.want)
		}
	}
	if _, ok := percentile(nil, 0.5); ok {
		t.Error("percentile of no samples reported one")
	}
}
