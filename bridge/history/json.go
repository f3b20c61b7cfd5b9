package history

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
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
	if y := e.Timestamp.Year(); y < 0 || y > 9999 {
		// Out of RFC 3339's range: encoding/json's own error.
		type plain Entry
		j, err := json.Marshal(plain(e))
		return append(b, j...), err
	}
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"eventId":`...)
	b = appendString(b, e.EventID)
	b = append(b, `,"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(e.Attempt), 10)
	b = append(b, `,"timestamp":"`...)
	b = e.Timestamp.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","durationMs":`...)
	b = strconv.AppendInt(b, e.DurationMs, 10)
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	b = append(b, `,"eventRequestMessage":{"method":`...)
	b = appendString(b, e.Request.Method)
	b = append(b, `,"requestUri":`...)
	b = appendString(b, e.Request.RequestURI)
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, e.Request.Headers)
	b = append(b, `,"content":`...)
	b = appendString(b, e.Request.Content)
	b = append(b, '}')
	if r := e.Response; r != nil {
		b = append(b, `,"eventResponseMessage":{"statusCode":`...)
		b = strconv.AppendInt(b, int64(r.StatusCode), 10)
		b = append(b, `,"reasonPhrase":`...)
		b = appendString(b, r.ReasonPhrase)
		b = append(b, `,"headers":`...)
		b = appendHeaders(b, r.Headers)
		b = append(b, `,"content":`...)
		b = appendString(b, r.Content)
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

// appendHeaders encodes h as encoding/json encodes a map[string]string:
// null when nil, names sorted.
func appendHeaders(b []byte, h map[string]string) []byte {
	if h == nil {
		return append(b, "null"...)
	}
	var buf [16]string // most requests and answers have fewer headers
	keys := buf[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, h[k])
	}
	return append(b, '}')
}

const hex = "0123456789abcdef"

// safe holds the bytes a JSON string carries as they are: ASCII but for
// ", \, <, >, & and control characters.
var safe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString encodes s as a JSON string the way encoding/json does by
// default: ", \ and control characters escaped (\n, \r, \t, \b, \f by
// name), <, > and & as \u escapes, invalid UTF-8 as U+FFFD, and U+2028 and
// U+2029 escaped. It copies byte by byte into room made for s at once: the
// strings it gets are mostly JSON, whose quotes come every few bytes, and
// a copy call for each run between them cost more than the bytes.
func appendString(b []byte, s string) []byte {
	b = slices.Grow(b, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe[c] {
			b = append(b, c)
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size - 1
	}
	return append(b, '"')
}
