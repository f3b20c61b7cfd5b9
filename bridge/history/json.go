package history

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/regwebhook/regwebhook/internal/jsonenc"
)

// Encoder encodes entries into buffers it reuses, for a store whose write
// of an entry is over when its call returns: every delivery writes one, and
// a new buffer each time was the largest allocation of a delivery. Its zero
// value is ready, and it is safe for concurrent use.
type Encoder struct{ bufs sync.Pool }

// maxKept bounds the buffers an Encoder keeps. An entry is some hundreds of
// bytes and its two bodies (at most MaxContent each); a larger one, whose
// headers are long, is let go rather than kept for every later entry.
const maxKept = 16 << 10

// Encode returns e's JSON (MarshalJSON's bytes) in a buffer of c's. Give it
// back with Release once nothing reads the bytes any more.
func (c *Encoder) Encode(e Entry) (*[]byte, error) {
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if n := e.sizeHint(); cap(*bp) < n {
		*bp = make([]byte, 0, n)
	}
	b, err := e.AppendJSON((*bp)[:0])
	*bp = b
	if err != nil {
		c.Release(bp)
		return nil, err
	}
	return bp, nil
}

// Release gives back a buffer of Encode.
func (c *Encoder) Release(bp *[]byte) {
	if cap(*bp) <= maxKept {
		c.bufs.Put(bp)
	}
}

// MarshalJSON encodes e exactly as encoding/json encodes its fields (the
// same bytes: HTML-safe escapes, invalid UTF-8 as U+FFFD, sorted header
// names), without reflection: every acknowledged delivery writes one entry,
// and reflecting over it was 7 % of regwebhook's CPU time under load.
func (e Entry) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, e.sizeHint()))
}

// sizeHint is about how many bytes e encodes to, for a buffer that holds it
// without growing.
func (e Entry) sizeHint() int {
	return 512 + len(e.Request.Content) + e.responseLen()
}

// AppendJSON appends MarshalJSON's bytes to b: a store that writes entries
// one after another encodes each into a buffer it reuses.
func (e Entry) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, e.ID)
	b = append(b, `,"eventId":`...)
	b = jsonenc.AppendString(b, e.EventID)
	b = append(b, `,"action":`...)
	b = jsonenc.AppendString(b, e.Action)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(e.Attempt), 10)
	b = append(b, `,"timestamp":`...)
	b, ok := jsonenc.AppendTime(b, e.Timestamp)
	if !ok {
		// Out of RFC 3339's range: encoding/json's own error.
		type plain Entry
		_, err := json.Marshal(plain(e))
		return b, err
	}
	b = append(b, `,"durationMs":`...)
	b = strconv.AppendInt(b, e.DurationMs, 10)
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, e.Error)
	}
	b = append(b, `,"eventRequestMessage":{"method":`...)
	b = jsonenc.AppendString(b, e.Request.Method)
	b = append(b, `,"requestUri":`...)
	b = jsonenc.AppendString(b, e.Request.RequestURI)
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, e.Request.Headers)
	b = append(b, `,"content":`...)
	b = jsonenc.AppendString(b, e.Request.Content)
	b = append(b, '}')
	if r := e.Response; r != nil {
		b = append(b, `,"eventResponseMessage":{"statusCode":`...)
		b = strconv.AppendInt(b, int64(r.StatusCode), 10)
		b = append(b, `,"reasonPhrase":`...)
		b = jsonenc.AppendString(b, r.ReasonPhrase)
		b = append(b, `,"headers":`...)
		b = appendHeaders(b, r.Headers)
		b = append(b, `,"content":`...)
		b = jsonenc.AppendString(b, r.Content)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func (e Entry) responseLen() int {
	if e.Response == nil {
		return 0
	}
	return 256 + len(e.Response.Content)
}

// MarshalJSON encodes h as encoding/json encodes a map[string]string of
// the same headers: null when nil, names sorted.
func (h Headers) MarshalJSON() ([]byte, error) {
	return appendHeaders(nil, h), nil
}

// UnmarshalJSON decodes what MarshalJSON encodes (any JSON object of
// strings, or null).
func (h *Headers) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		*h = nil
		return nil
	}
	*h = MakeHeaders(m)
	return nil
}

// appendHeaders appends MarshalJSON's bytes; h is sorted, each name once.
func appendHeaders(b []byte, h Headers) []byte {
	if h == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, x := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, x.Name)
		b = append(b, ':')
		b = jsonenc.AppendString(b, x.Value)
	}
	return append(b, '}')
}
