package event

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/distribution/distribution/v3/notifications"
)

// Envelope is the body the registry posts: a list of events, each kept as raw
// bytes so that one bad event does not spoil the others.
type Envelope struct {
	Events []json.RawMessage `json:"events"`
}

// ErrEnvelope marks a body that is not an envelope at all; the registry must
// be told (400), since no retry can fix it.
var ErrEnvelope = errors.New("not an envelope")

// ParseEnvelope decodes a request body into its events. It fails only when
// the body is not a JSON object with an "events" array.
func ParseEnvelope(body []byte) ([]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("%w: body is not a JSON object: %v", ErrEnvelope, err)
	}
	raw, ok := top["events"]
	if !ok {
		return nil, fmt.Errorf("%w: body has no \"events\" array", ErrEnvelope)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(raw, &events); err != nil || events == nil {
		return nil, fmt.Errorf("%w: \"events\" is not an array", ErrEnvelope)
	}
	return events, nil
}

// Parse decodes one registry event with the registry's own types and checks
// the fields every event needs. An error means the event is invalid and is to
// be dropped, not the envelope refused.
func Parse(raw json.RawMessage) (notifications.Event, error) {
	var ev notifications.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("decode event: %w", err)
	}
	switch {
	case ev.ID == "":
		return ev, errors.New("event has no id")
	case ev.Action == "":
		return ev, fmt.Errorf("event %s has no action", ev.ID)
	case ev.Target.Repository == "":
		return ev, fmt.Errorf("event %s has no target.repository", ev.ID)
	}
	return ev, nil
}
