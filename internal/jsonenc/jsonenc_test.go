package jsonenc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every byte, at every place of a run of safe bytes, comes out as
// encoding/json writes it.
func TestAppendStringEveryByteEveryPlace(t *testing.T) {
	for c := range 256 {
		for at := range 17 {
			s := []byte(strings.Repeat("a", 17))
			s[at] = byte(c)
			want, err := json.Marshal(string(s))
			if err != nil {
				t.Fatal(err)
			}
			if got := AppendString(nil, string(s)); !bytes.Equal(got, want) {
				t.Fatalf("byte %#x at %d: %s, want %s", c, at, got, want)
			}
		}
	}
}

// Times come out as encoding/json writes them; the ones it refuses are
// refused, with b as it was.
func TestAppendTimeIsEncodingJSONs(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.FixedZone("", 3600)),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(23*3600+59*60))),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		want, werr := json.Marshal(tm)
		got, ok := AppendTime([]byte("x"), tm)
		switch {
		case werr != nil && (ok || string(got) != "x"):
			t.Errorf("%v: got %s, %v; encoding/json refuses it: %v", tm, got, ok, werr)
		case werr == nil && (!ok || string(got) != "x"+string(want)):
			t.Errorf("%v: got %s, %v; want x%s", tm, got, ok, want)
		}
	}
}
