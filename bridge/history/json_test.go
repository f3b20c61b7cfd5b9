package history

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// reflected encodes e with encoding/json's reflection, as entries were
// encoded before Entry had MarshalJSON.
func reflected(t testing.TB, e Entry) []byte {
	type plain Entry
	b, err := json.Marshal(plain(e))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleEntry() Entry {
	return Entry{
		ID: "d-1", WebhookID: "w-1", EventID: "ev-1", Action: "push", Attempt: 3,
		Timestamp:  time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.FixedZone("", 3600)),
		DurationMs: 12,
		Request: Request{
			Method: "POST", RequestURI: "https://hooks.example.com/…",
			Headers: Headers{{"Authorization", Masked}, {"Content-Type", "application/json"}, {"X-Weird", "a\"b\\c<d>&e\u2028"}},
			Content: `{"id":"ev-1","target":{"repository":"team/app","tag":"v1"},"note":"tab	and newline` + "\n" + `"}`,
		},
		Response: &Response{StatusCode: 200, ReasonPhrase: "OK", Headers: Headers{}, Content: "ok\x00\x1f\x7f\xff\xfe é ☃ \u2029"},
	}
}

// The entries stores keep and the API shows are the bytes encoding/json
// made of them before: old and new records read the same.
func TestMarshalJSONIsEncodingJSONs(t *testing.T) {
	full := sampleEntry()
	noResponse := sampleEntry()
	noResponse.Response, noResponse.Error = nil, "dial tcp: connection refused <&>"
	nilHeaders := sampleEntry()
	nilHeaders.Request.Headers, nilHeaders.Response.Headers = nil, nil
	utc := sampleEntry()
	utc.Timestamp = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	farFuture := sampleEntry()
	farFuture.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

	for name, e := range map[string]Entry{"full": full, "no response": noResponse, "nil headers": nilHeaders, "utc": utc, "empty": {}} {
		got, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := reflected(t, e); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		var back Entry
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
	}
	// A time encoding/json refuses is refused the same way.
	if _, err := json.Marshal(farFuture); err == nil || !strings.Contains(err.Error(), "year outside of range") {
		t.Errorf("year 10000: err = %v, want encoding/json's range error", err)
	}
}

// withHeader is h with name set to value, sorted.
func withHeader(h Headers, name, value string) Headers {
	out := Headers{{name, value}}
	for _, x := range h {
		if x.Name != name {
			out = append(out, x)
		}
	}
	out.Sort()
	return out
}

// asMap is h as the map[string]string it stood for before.
func asMap(h Headers) map[string]string {
	if h == nil {
		return nil
	}
	m := make(map[string]string, len(h))
	for _, x := range h {
		m[x.Name] = x.Value
	}
	return m
}

// Headers encode as encoding/json encodes the map they stand for, and
// decode back from it.
func TestHeadersJSONIsAMapsJSON(t *testing.T) {
	for name, h := range map[string]Headers{
		"nil": nil, "empty": {}, "one": {{"X-A", "1"}},
		"several": sampleEntry().Request.Headers,
		"odd":     {{"", ""}, {"a\"b", "\x00"}, {"\xff", "\u2028<>&"}},
	} {
		got, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := json.Marshal(asMap(h))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		var back Headers
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatalf("%s: decode %s: %v", name, want, err)
		}
		again, _ := json.Marshal(back)
		if wantAgain, _ := json.Marshal(asMap(back)); !bytes.Equal(again, wantAgain) || (back == nil) != (h == nil) {
			t.Errorf("%s: decoded %s into %#v, which encodes as %s", name, want, back, again)
		}
	}
	var h Headers
	if err := json.Unmarshal([]byte(`{"a":1}`), &h); err == nil {
		t.Errorf("an object of numbers decoded as headers %v", h)
	}
	if err := json.Unmarshal([]byte(`{"b":"2","a":"1"}`), &h); err != nil || !slices.Equal(h, Headers{{"a", "1"}, {"b", "2"}}) {
		t.Errorf("decoded %v, %v; want a then b", h, err)
	}
}

func FuzzMarshalJSON(f *testing.F) {
	f.Add("ev-1", "answered 500", "X-Env", "a, b", `{"a":"<b>"}`, "ok")
	f.Add("\xff\xfe", "\u2028\u2029", "\x00", "\x7f", "\"\\/", "\t\r\n")
	f.Fuzz(func(t *testing.T, id, errText, name, value, content, response string) {
		e := sampleEntry()
		e.EventID, e.Error = id, errText
		e.Request.Headers = withHeader(e.Request.Headers, name, value)
		e.Request.Content = content
		e.Response.Content = response
		got, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want := reflected(t, e)
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		// Into a buffer that held a longer entry, as the stores reuse them.
		dirty := []byte(strings.Repeat("x", len(want)+64))
		if again, err := e.AppendJSON(dirty[:0]); err != nil || !bytes.Equal(again, want) {
			t.Fatalf("into a used buffer: err %v\n got %s\nwant %s", err, again, want)
		}
		var back Entry
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("decode: %v", err)
		}
		// What is valid UTF-8 comes back as it was sent.
		if !utf8.ValidString(name) || !utf8.ValidString(value) {
			return
		}
		if got := back.Request.Headers.Get(name); got != value {
			t.Errorf("header value %q decoded as %q", value, got)
		}
		if diff := cmp.Diff(e.Request.Headers, back.Request.Headers); diff != "" {
			t.Errorf("headers (-sent +decoded):\n%s", diff)
		}
	})
}

// AppendJSON appends MarshalJSON's bytes after what the buffer holds, and a
// buffer reused for a second entry holds that entry alone.
func TestAppendJSONAppendsMarshalJSONsBytes(t *testing.T) {
	first, second := sampleEntry(), sampleEntry()
	second.ID, second.Response = "d-2", nil
	want, err := first.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	buf, err := first.AppendJSON([]byte("prefix:"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf); got != "prefix:"+string(want) {
		t.Errorf("appended to a prefix:\n got %s\nwant prefix:%s", got, want)
	}
	buf, err = second.AppendJSON(buf[:0])
	if err != nil {
		t.Fatal(err)
	}
	if want := reflected(t, second); !bytes.Equal(buf, want) {
		t.Errorf("reused buffer:\n got %s\nwant %s", buf, want)
	}
	far := sampleEntry()
	far.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := far.AppendJSON(nil); err == nil || !strings.Contains(err.Error(), "year outside of range") {
		t.Errorf("a year past 9999: error %v, want encoding/json's", err)
	}
}

// BenchmarkMarshalEntry compares the encoder with encoding/json's
// reflection on an entry of a delivered push.
func BenchmarkMarshalEntry(b *testing.B) {
	e := sampleEntry()
	e.Request.Content = strings.Repeat(`{"id":"ev-1","target":{"repository":"team/app"}}`, 12)
	b.Run("MarshalJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A push as the acr format renders it, the load command's payload.
	acr := e
	acr.Request.Content = `{"id":"8b4b6a3e-0c1f-4c39-9d1e-5b0e3f9a2c71","timestamp":"2026-11-29T13:25:15.123456789Z","action":"push",` +
		`"target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,` +
		`"digest":"sha256:6a2b0b4f0c1e5a1d2f3e4c5b6a79808f1e2d3c4b5a69788796a5b4c3d2e1f0a9","length":528,` +
		`"repository":"load/repo-17","tag":"t-000123"},"request":{"id":"f3b5c2a1-7d4e-4b8a-9c6f-2e1d0a9b8c7d",` +
		`"host":"registry.example.com:5000","method":"PUT","useragent":"go-containerregistry/v0.22.1"}}`
	b.Run("MarshalJSON/acr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := acr.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reflected(b, e)
		}
	})
}
