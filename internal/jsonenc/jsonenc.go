// Package jsonenc appends JSON values to a byte slice exactly as
// encoding/json writes them, without reflection, for the few types that
// every event or delivery encodes: reflecting over them was a visible part
// of regwebhook's CPU time under load.
package jsonenc

import (
	"slices"
	"time"
	"unicode/utf8"
)

// AppendTime appends t as encoding/json writes a time.Time: RFC 3339 with
// nanoseconds, quoted. It reports false, and returns b as it was, for a
// time encoding/json refuses (a year outside 0–9999, a zone's hour outside
// 0–23): the caller then takes encoding/json's own error.
func AppendTime(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false
	}
	return append(out, '"'), true
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

// AppendString appends s as a JSON string the way encoding/json does by
// default: ", \ and control characters escaped (\n, \r, \t, \b, \f by
// name), <, > and & as \u escapes, invalid UTF-8 as U+FFFD, and U+2028 and
// U+2029 escaped. It copies byte by byte into room made for s at once: the
// strings it gets are mostly JSON, whose quotes come every few bytes, and
// a copy call for each run between them cost more than the bytes.
func AppendString(b []byte, s string) []byte {
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
