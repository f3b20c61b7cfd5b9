package receive_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// Every captured fixture, replayed as the registry sent it, gives exactly the
// jobs its events call for: manifests only, tagless events only to scopes
// that take every tag, duplicates once.
func TestFixtures(t *testing.T) {
	const (
		oci    = " oci.image.manifest.v1+json"
		index  = " oci.image.index.v1+json"
		docker = " docker.distribution.manifest.v2+json"
		list   = " docker.distribution.manifest.list.v2+json"
	)
	tests := []struct {
		fixture           string
		token             string
		accepted, dropped int
		drops             map[string]int
		jobs              []job
	}{
		{fixture: "auth-and-headers", token: "bridge-secret", accepted: 1, jobs: []job{
			{"appalltags", "push", "app:v1@b8f324ab" + oci},
			{"appv1only", "push", "app:v1@b8f324ab" + oci},
			{"everything", "push", "app:v1@b8f324ab" + oci},
		}},
		{fixture: "delete-blob", dropped: 1, drops: map[string]int{"unknown-digest": 1}},
		// Alone, the digest is unknown: only the tag deletes that follow come.
		{fixture: "delete-manifest", accepted: 2, dropped: 1, drops: map[string]int{"unknown-digest": 1}, jobs: []job{
			{"appalltags", "delete", "app:v1"},
			{"appalltags", "delete", "app:v2"},
			{"appv1only", "delete", "app:v1"},
			{"everything", "delete", "app:v1"},
			{"everything", "delete", "app:v2"},
		}},
		{fixture: "delete-tag", accepted: 1, jobs: []job{
			{"appalltags", "delete", "app:v2"},
			{"everything", "delete", "app:v2"},
		}},
		{fixture: "includereferences", accepted: 4, jobs: []job{
			{"appalltags", "push", "app:v1@c89d269d" + oci},
			{"appv1only", "push", "app:v1@c89d269d" + oci},
			{"everything", "push", "app:v1@c89d269d" + oci},
			{"everything", "push", "multi:v1@b4d527fa" + index},
			{"everything", "push", "multi@4d6de220" + oci},
			{"everything", "push", "multi@ee5b1670" + oci},
			{"multialltags", "push", "multi:v1@b4d527fa" + index},
			{"multialltags", "push", "multi@4d6de220" + oci},
			{"multialltags", "push", "multi@ee5b1670" + oci},
		}},
		{fixture: "mount", accepted: 2, dropped: 3, drops: map[string]int{"unsupported": 3}, jobs: []job{
			{"everything", "pull", "app:v1@451aec60" + oci},
			{"everything", "push", "other:v1@451aec60" + oci},
		}},
		{fixture: "pull-blob", dropped: 3, drops: map[string]int{"blob": 3}},
		{fixture: "pull-head", accepted: 1, dropped: 3, drops: map[string]int{"blob": 3}, jobs: []job{
			{"everything", "pull", "app:v1@20287cef" + oci},
		}},
		{fixture: "pull", accepted: 2, jobs: []job{
			{"everything", "pull", "app:v1@8a5d56ad" + oci},
			{"everything", "pull", "app@8a5d56ad" + oci},
		}},
		{fixture: "push-blob", dropped: 1, drops: map[string]int{"blob": 1}},
		{fixture: "push-by-digest", accepted: 1, jobs: []job{
			{"appalltags", "push", "app@6077e52d" + oci},
			{"everything", "push", "app@6077e52d" + oci},
		}},
		{fixture: "push-image-sequence", accepted: 1, dropped: 3, drops: map[string]int{"blob": 3}, jobs: []job{
			{"appalltags", "push", "app:v1@5f00ac01" + oci},
			{"appv1only", "push", "app:v1@5f00ac01" + oci},
			{"everything", "push", "app:v1@5f00ac01" + oci},
		}},
		{fixture: "push-index", accepted: 3, jobs: []job{
			{"everything", "push", "multi:v1@8a693d35" + index},
			{"everything", "push", "multi@3ff992de" + oci},
			{"everything", "push", "multi@47216492" + oci},
			{"multialltags", "push", "multi:v1@8a693d35" + index},
			{"multialltags", "push", "multi@3ff992de" + oci},
			{"multialltags", "push", "multi@47216492" + oci},
		}},
		{fixture: "push-manifest-by-tag", accepted: 1, jobs: []job{
			{"appalltags", "push", "app:v1@02097980" + oci},
			{"appv1only", "push", "app:v1@02097980" + oci},
			{"everything", "push", "app:v1@02097980" + oci},
		}},
		{fixture: "push-manifest-docker", accepted: 1, jobs: []job{
			{"appalltags", "push", "app:v1@0208ea28" + docker},
			{"appv1only", "push", "app:v1@0208ea28" + docker},
			{"everything", "push", "app:v1@0208ea28" + docker},
		}},
		{fixture: "push-manifest-list-docker", accepted: 3, jobs: []job{
			{"everything", "push", "multi:v1@b3463200" + list},
			{"everything", "push", "multi@560f679e" + docker},
			{"everything", "push", "multi@5e879f62" + docker},
			{"multialltags", "push", "multi:v1@b3463200" + list},
			{"multialltags", "push", "multi@560f679e" + docker},
			{"multialltags", "push", "multi@5e879f62" + docker},
		}},
		{fixture: "push-overwrite-tag", accepted: 2, jobs: []job{
			{"appalltags", "push", "app:v1@0ebe3d6a" + oci},
			{"appv1only", "push", "app:v1@0ebe3d6a" + oci},
			{"everything", "pull", "app:v1@02575328" + oci},
			{"everything", "push", "app:v1@0ebe3d6a" + oci},
		}},
		{fixture: "repush-same-image", accepted: 1, jobs: []job{
			{"everything", "pull", "app:v1@3ec08af4" + oci},
		}},
		// The registry re-sent a refused blob event five times: each is dropped again.
		{fixture: "retry-503", accepted: 1, dropped: 8, drops: map[string]int{"blob": 8}, jobs: []job{
			{"appalltags", "push", "app:v1@e2641eb8" + oci},
			{"appv1only", "push", "app:v1@e2641eb8" + oci},
			{"everything", "push", "app:v1@e2641eb8" + oci},
		}},
		{fixture: "tag-existing-manifest", accepted: 2, jobs: []job{
			{"appalltags", "push", "app:v2@805fb373" + oci},
			{"everything", "pull", "app:v1@805fb373" + oci},
			{"everything", "push", "app:v2@805fb373" + oci},
		}},
		{fixture: "timeout-duplicates", accepted: 1, dropped: 5, drops: map[string]int{"blob": 5}, jobs: []job{
			{"appalltags", "push", "app:v1@4ff859ad" + oci},
			{"appv1only", "push", "app:v1@4ff859ad" + oci},
			{"everything", "push", "app:v1@4ff859ad" + oci},
		}},
	}
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(tests) {
		t.Errorf("%d fixtures, %d cases: every fixture needs its case", len(all), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			e := newEnv(t, tt.token)
			accepted, dropped := e.replay(mustLoad(t, tt.fixture))
			if accepted != tt.accepted || dropped != tt.dropped {
				t.Errorf("accepted %d dropped %d, want %d and %d", accepted, dropped, tt.accepted, tt.dropped)
			}
			if diff := cmp.Diff(tt.jobs, e.jobs()); diff != "" {
				t.Errorf("jobs (-want +got):\n%s", diff)
			}
			want := tt.drops
			if want == nil {
				want = map[string]int{}
			}
			if diff := cmp.Diff(want, e.counts("regwebhook_events_dropped_total")); diff != "" {
				t.Errorf("dropped events by reason (-want +got):\n%s", diff)
			}
		})
	}
}

// The fixture's one exact body, posted byte for byte, is taken.
func TestRawBody(t *testing.T) {
	body, err := fixtures.RawBody()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "")
	e.postOK(body, http.Header{"Content-Type": {"application/vnd.docker.distribution.events.v2+json"}}, 1, 0)
	if got := len(e.jobs()); got != 3 {
		t.Errorf("%d jobs, want 3", got)
	}
}
