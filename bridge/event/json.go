package event

import (
	"encoding/json"
	"strconv"

	"github.com/regwebhook/regwebhook/internal/jsonenc"
)

// MarshalJSON encodes e exactly as encoding/json encodes its fields (the
// same bytes), without reflection: every event an envelope brings is
// rendered for its webhooks, and reflecting over it was the largest part of
// rendering.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 512))
}

// AppendJSON appends MarshalJSON's bytes to b.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, e.ID)
	b = append(b, `,"timestamp":`...)
	b, ok := jsonenc.AppendTime(b, e.Timestamp)
	if !ok {
		// Out of RFC 3339's range: encoding/json's own error.
		type plain Event
		_, err := json.Marshal((*plain)(e))
		return b, err
	}
	b = append(b, `,"action":`...)
	b = jsonenc.AppendString(b, string(e.Action))

	t := &e.Target
	b = append(b, `,"target":{`...)
	open := len(b)
	b = appendField(b, open, "mediaType", t.MediaType)
	if t.Size != 0 {
		b = appendName(b, open, "size")
		b = strconv.AppendInt(b, t.Size, 10)
	}
	b = appendField(b, open, "digest", t.Digest)
	if t.Length != 0 {
		b = appendName(b, open, "length")
		b = strconv.AppendInt(b, t.Length, 10)
	}
	b = appendName(b, open, "repository")
	b = jsonenc.AppendString(b, t.Repository)
	b = appendField(b, open, "tag", t.Tag)
	if len(t.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, tag := range t.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, tag)
		}
		b = append(b, ']')
	}

	r := &e.Request
	b = append(b, `},"request":{`...)
	open = len(b)
	b = appendField(b, open, "id", r.ID)
	b = appendField(b, open, "host", r.Host)
	b = appendField(b, open, "method", r.Method)
	b = appendField(b, open, "useragent", r.UserAgent)
	return append(b, "}}"...), nil
}

// appendField appends an omitempty string field of an object that began at
// open: nothing when v is empty.
func appendField(b []byte, open int, name, v string) []byte {
	if v == "" {
		return b
	}
	return jsonenc.AppendString(appendName(b, open, name), v)
}

// appendName appends a field's name and colon, after a comma unless it is
// the first field of the object that began at open.
func appendName(b []byte, open int, name string) []byte {
	if len(b) > open {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}
