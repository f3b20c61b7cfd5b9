package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/regwebhook/regwebhook/bridge/event"
)

// An envelope is a JSON object whose "events" member is an array, read as
// a map would be: the key exactly "events", the last of a key given twice,
// nothing after the object but space. What is refused says why.
func TestParseEnvelope(t *testing.T) {
	for _, c := range []struct {
		body   string
		events int    // when taken
		why    string // when refused: part of the error
	}{
		{body: `{"events": [{"id": "a"}, {"id": "b"}]}`, events: 2},
		{body: " \n{\"events\": []}\n ", events: 0},
		{body: `{"events": 5, "events": [{}]}`, events: 1},
		{body: `{"even\u0074s": [{}]}`, events: 1},
		{body: ``, why: "it is empty"},
		{body: `[{"events": []}]`, why: "it starts with '['"},
		{body: `null`, why: "it starts with 'n'"},
		{body: `{"events": [{}]} {}`, why: "not a JSON object"},
		{body: `{"events": [{}]`, why: "not a JSON object"},
		{body: `{}`, why: `has no "events" array`},
		{body: `{"Events": [{}]}`, why: `has no "events" array`},
		{body: `{"events": {"id": "a"}}`, why: `"events" is not an array`},
		{body: `{"events": [{}], "events": null}`, why: `"events" is not an array`},
	} {
		raws, err := event.ParseEnvelope([]byte(c.body))
		switch {
		case c.why == "" && (err != nil || len(raws) != c.events):
			t.Errorf("%s: %d events, %v; want %d", c.body, len(raws), err, c.events)
		case c.why != "" && (!errors.Is(err, event.ErrEnvelope) || !strings.Contains(err.Error(), c.why)):
			t.Errorf("%s: %d events, %v; want ErrEnvelope saying %s", c.body, len(raws), err, c.why)
		}
	}
}
