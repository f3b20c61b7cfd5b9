// Package payload renders an event into the body a webhook gets, in the
// webhook's format. A job's payload is rendered once, when it is enqueued.
package payload

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// Content types of the formats.
const (
	JSON        = "application/json"
	CloudEvents = "application/cloudevents+json"
	Envelope    = "application/vnd.docker.distribution.events.v2+json"
)

// cloudEvent is a CloudEvents 1.0 event in structured JSON mode.
type cloudEvent struct {
	SpecVersion     string       `json:"specversion"`
	ID              string       `json:"id"`
	Source          string       `json:"source"`
	Type            string       `json:"type"`
	Subject         string       `json:"subject,omitempty"`
	Time            time.Time    `json:"time"`
	DataContentType string       `json:"datacontenttype"`
	Data            *event.Event `json:"data"`
}

// Render returns the body and content type of ev in format f.
func Render(f rule.Format, ev *event.Event) ([]byte, string, error) {
	var (
		body []byte
		err  error
	)
	switch f {
	case rule.ACR, "":
		body, err = ev.AppendJSON(make([]byte, 0, 512))
		return body, JSON, err
	case rule.CloudEvents:
		body, err = json.Marshal(cloudEvent{
			SpecVersion:     "1.0",
			ID:              ev.ID,
			Source:          "//" + ev.Request.Host,
			Type:            "io.regwebhook.image." + string(ev.Action),
			Subject:         subject(&ev.Target),
			Time:            ev.Timestamp,
			DataContentType: JSON,
			Data:            ev,
		})
		return body, CloudEvents, err
	case rule.Envelope:
		body, err = json.Marshal(event.Envelope{Events: []json.RawMessage{ev.Raw}})
		return body, Envelope, err
	}
	return nil, "", fmt.Errorf("unknown payload format %q", f)
}

// subject names the image: repo:tag, or repo@digest when there is no tag.
func subject(t *event.Target) string {
	switch {
	case t.Tag != "":
		return t.Repository + ":" + t.Tag
	case t.Digest != "":
		return t.Repository + "@" + t.Digest
	}
	return t.Repository
}

// ping is the acr payload of a ping.
type ping struct {
	ID        string       `json:"id"`
	Timestamp time.Time    `json:"timestamp"`
	Action    event.Action `json:"action"`
}

// Ping returns the body and content type of a ping in format f. The envelope
// format has no ping of the registry's, so it gets the acr one.
func Ping(f rule.Format, id string, now time.Time) ([]byte, string, error) {
	p := ping{ID: id, Timestamp: now, Action: event.Ping}
	if f == rule.CloudEvents {
		body, err := json.Marshal(struct {
			SpecVersion string    `json:"specversion"`
			ID          string    `json:"id"`
			Source      string    `json:"source"`
			Type        string    `json:"type"`
			Time        time.Time `json:"time"`
			Data        ping      `json:"data"`
		}{"1.0", id, "regwebhook", "io.regwebhook.ping", now, p})
		return body, CloudEvents, err
	}
	body, err := json.Marshal(p)
	return body, JSON, err
}
