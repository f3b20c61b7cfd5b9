package history

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMaskURI(t *testing.T) {
	for uri, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/XXXX": "https://hooks.slack.com/…",
		"http://ci.example.com:8080/hook?token=s3cret":    "http://ci.example.com:8080/…",
		"http://ci.example.com":                           "http://ci.example.com",
		"http://ci.example.com/":                          "http://ci.example.com/…",
		"not a url":                                       "***",
	} {
		if got := MaskURI(uri); got != want {
			t.Errorf("MaskURI(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestHeadersOf(t *testing.T) {
	h := http.Header{"X-Env": {"a", "b"}, "Content-Type": {"application/json"}, "Accept": {}}
	got := HeadersOf(h)
	want := Headers{{"Accept", ""}, {"Content-Type", "application/json"}, {"X-Env", "a, b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
