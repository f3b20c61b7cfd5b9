package receive

import (
	"net/http/httptest"
	"testing"
)

// TestWriteCountsLikeEncodingJSON: an envelope's answer is what
// encoding/json writes for the map of its counts, byte for byte, headers
// included.
func TestWriteCountsLikeEncodingJSON(t *testing.T) {
	for _, c := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {3, 7}, {10, 123456}, {1 << 40, 9}} {
		want := httptest.NewRecorder()
		writeJSON(want, 200, map[string]int{"accepted": c[0], "dropped": c[1]})
		got := httptest.NewRecorder()
		writeCounts(got, c[0], c[1])
		if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("counts %v: got %d %q %v, want %d %q %v", c, got.Code, got.Body, got.Header(), want.Code, want.Body, want.Header())
		}
	}
}
