// Package event holds the registry event as webhooks see it, and the steps
// that turn the registry's own envelope entries into it: Parse checks one
// entry, Normalize decides what it becomes with the help of the tag index.
package event

import (
	"encoding/json"
	"time"
)

// Action is what happened to an image.
type Action string

// The actions a webhook can subscribe to, and ping, which only a ping sends.
const (
	Push   Action = "push"
	Delete Action = "delete"
	Pull   Action = "pull"
	Ping   Action = "ping"
)

// Event is a normalized registry event: a manifest pushed, deleted or pulled.
// Its JSON form is the payload of format acr.
type Event struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    Action    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`

	// Raw is the registry's own JSON of this event, unenriched.
	Raw json.RawMessage `json:"-"`
}

// Target is the manifest an event is about. Empty strings are absent values.
type Target struct {
	MediaType  string `json:"mediaType,omitempty"`
	Size       int64  `json:"size,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Length     int64  `json:"length,omitempty"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	// Tags lists, on a digest delete, the tags that pointed at the manifest.
	Tags []string `json:"tags,omitempty"`
}

// Request describes the registry request that caused the event.
type Request struct {
	ID        string `json:"id,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"useragent,omitempty"`
}

// HasTag reports whether the event names a tag. Events without one (a push by
// digest, the children of an index, a digest delete) match only scopes that
// take every tag.
func (e *Event) HasTag() bool { return e.Target.Tag != "" }
