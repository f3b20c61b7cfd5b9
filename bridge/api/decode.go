package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/webhooks"
)

// readBody reads r's body, at most MaxBodyBytes of it.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &ErrorDetail{Code: CodeTooLarge, Message: fmt.Sprintf("the body is over %d bytes", MaxBodyBytes)}
		}
		return nil, &ErrorDetail{Code: CodeInvalid, Message: "read body: " + err.Error(), Field: "body"}
	}
	return body, nil
}

// fields are the fields of a webhook a request sets: those given, strictly
// decoded. Create uses them all; update refuses a name change.
type fields struct {
	name  *string
	patch webhooks.Patch
	given []string // the names of the fields given, sorted: for the log
}

// decodeFields decodes a request body that gives fields of a webhook. It
// refuses, as a *rule.FieldError naming the field: a body that is not a JSON
// object, a field that is not a webhook's or that clients do not set
// (source), a value of the wrong type or null, and the mask "***" as a
// header value or secret (an answer of show sent back).
func decodeFields(body []byte) (*fields, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		msg := "must be a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, &rule.FieldError{Field: "body", Message: msg}
	}
	if field, key, dup := duplicateKey(body); dup {
		return nil, &rule.FieldError{Field: named(field), Message: fmt.Sprintf("%q is given twice; give each key once", key)}
	}
	f := &fields{}
	p := &f.patch
	decoders := map[string]func(field string, raw json.RawMessage) error{
		"name":               decodeAs(&f.name, "a string"),
		"uri":                decodeAs(&p.URI, "a string"),
		"headers":            decodeAs(&p.Headers, "an object whose values are strings"),
		"actions":            decodeAs(&p.Actions, "a list of strings"),
		"status":             decodeAs(&p.Status, "a string"),
		"scope":              decodeAs(&p.Scope, "a string"),
		"format":             decodeAs(&p.Format, "a string"),
		"secret":             decodeAs(&p.Secret, "a string"),
		"insecureSkipVerify": decodeAs(&p.InsecureSkipVerify, "true or false"),
	}
	f.given = sortedKeys(raw)
	for _, k := range f.given {
		dec, ok := decoders[k]
		if !ok {
			return nil, &rule.FieldError{Field: named(k), Message: fmt.Sprintf("%q is not a field a request can set", k)}
		}
		if err := dec(k, raw[k]); err != nil {
			return nil, err
		}
	}
	if p.Headers != nil {
		for _, k := range sortedKeys(*p.Headers) {
			if (*p.Headers)[k] == history.Masked {
				return nil, &rule.FieldError{Field: "headers", Message: fmt.Sprintf(
					"the value of %q is %s, which list and show put in place of the real value; send the real value, or leave headers out to keep them",
					k, history.Masked)}
			}
		}
	}
	if p.Secret != nil && *p.Secret == history.Masked {
		return nil, &rule.FieldError{Field: "secret", Message: fmt.Sprintf(
			"is %s, which list and show put in place of the real secret; send the real secret, or leave it out to keep it", history.Masked)}
	}
	return f, nil
}

// named is the field an error names for the key k: "body" for the key "",
// which would name nothing.
func named(k string) string {
	if k == "" {
		return "body"
	}
	return k
}

// duplicateKey finds a key given twice in one object of body, which must be
// valid JSON: decoding keeps the last silently, where a proxy or a log may
// have read the first. It returns the top-level field the object is in (the
// key itself at the top) and the key.
func duplicateKey(body []byte) (field, key string, dup bool) {
	type object struct {
		keys    map[string]bool
		wantKey bool
	}
	var (
		dec   = json.NewDecoder(bytes.NewReader(body))
		stack []*object // nil for an array
	)
	// value notes that a value ended: the object it is in wants a key next.
	value := func() {
		if n := len(stack); n > 0 && stack[n-1] != nil {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			value()
			continue
		}
		top := (*object)(nil)
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		k, isString := tok.(string)
		if top == nil || !top.wantKey || !isString {
			value()
			continue
		}
		if len(stack) == 1 {
			field = k
		}
		if top.keys[k] {
			return field, k, true
		}
		top.keys[k] = true
		top.wantKey = false
	}
}

// decodeAs returns a decoder that sets *dst to a new value decoded from raw;
// null and a value of another type are refused with the field named.
func decodeAs[T any](dst **T, what string) func(string, json.RawMessage) error {
	return func(field string, raw json.RawMessage) error {
		var v T
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, &v) != nil {
			return &rule.FieldError{Field: field, Message: "must be " + what}
		}
		*dst = &v
		return nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// webhook is the webhook that f describes, for create.
func (f *fields) webhook() *rule.Webhook {
	w := &rule.Webhook{}
	if f.name != nil {
		w.Name = *f.name
	}
	return f.patch.Apply(w)
}

// intParam reads the query parameter name as an integer in [lo, hi]; def
// when it is absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, &rule.FieldError{Field: name, Message: fmt.Sprintf("%q must be a whole number from %d to %d", s, lo, hi)}
	}
	return n, nil
}
