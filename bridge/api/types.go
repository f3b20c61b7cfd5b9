package api

import (
	"time"

	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/bridge/rule"
)

// The JSON the API answers with. Clients (the CLI, the page) decode these.

// Webhook is a webhook as list, show, create and update answer it: the
// fields of rule.Webhook with every custom header value and the secret shown
// as "***" and the URI as scheme://host/… (history.MaskURI), and what its
// history says of its deliveries (pings do not count).
type Webhook struct {
	rule.Webhook
	// LastDelivery is the newest delivery attempt kept; absent when none is.
	LastDelivery *LastDelivery `json:"lastDelivery,omitempty"`
	// FailingSince is when the newest run of failed attempts began: the time
	// of its oldest attempt still kept in history. Absent when the newest
	// attempt succeeded, or there is none.
	FailingSince *time.Time `json:"failingSince,omitempty"`
	// LastError is the error of the newest attempt while the webhook is
	// failing (failingSince is set), as history records it: the URI only as
	// scheme://host/…. Absent when the newest attempt succeeded.
	LastError string `json:"lastError,omitempty"`
}

// LastDelivery is a webhook's newest delivery attempt.
type LastDelivery struct {
	ID   string    `json:"id"` // the delivery id, for redeliver
	Time time.Time `json:"time"`
	// Status is DeliverySucceeded or DeliveryFailed.
	Status string `json:"status"`
	// StatusCode is the target's HTTP status; absent when it did not answer.
	StatusCode int `json:"statusCode,omitempty"`
}

// Values of LastDelivery.Status.
const (
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// WebhookList is a page of the list, sorted by name.
type WebhookList struct {
	Items []Webhook `json:"items"`
	// Next, when set, is the after= that asks for the next page.
	Next string `json:"next,omitempty"`
}

// Config is what get-config answers: the only place where the URI, the
// custom header values and the secret are shown whole.
type Config struct {
	URI     string            `json:"uri"`
	Headers map[string]string `json:"headers,omitempty"`
	Secret  string            `json:"secret,omitempty"`
}

// Events is a webhook's history, newest first. Ping answers one entry alone.
type Events struct {
	Items []history.Entry `json:"items"`
}

// DeadLetter is a delivery that ran out of attempts or of age.
type DeadLetter struct {
	ID          string    `json:"id"` // the delivery id
	EventID     string    `json:"eventId"`
	Action      string    `json:"action"`
	Attempts    int       `json:"attempts"`
	Created     time.Time `json:"created"` // made, or last redelivered
	Died        time.Time `json:"died"`
	Error       string    `json:"error"`
	Redelivery  bool      `json:"redelivery"`
	ContentType string    `json:"contentType,omitempty"`
	// Content is the payload, as it would be sent again.
	Content string `json:"content"`
}

// DeadLetters are a webhook's dead letters, the last to die first.
type DeadLetters struct {
	Items []DeadLetter `json:"items"`
}

// Purged is what purging dead letters answers.
type Purged struct {
	Purged int `json:"purged"`
}

// Queued is what a redelivery answers: how many deliveries it queued.
type Queued struct {
	Queued int `json:"queued"`
}

// ErrorResponse is the body of every answer that is not 2xx.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Code is one of the Code constants.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the field of the request that is wrong, for code invalid.
	Field string `json:"field,omitempty"`
}

func (e *ErrorDetail) Error() string { return e.Message }

// Error codes, with their HTTP status.
const (
	CodeInvalid          = "invalid"                // 400; the message and Field name the field
	CodeUnauthorized     = "unauthorized"           // 401
	CodeForbidden        = "forbidden"              // 403: no admin.token, and not a loopback client of localhost
	CodeNotFound         = "not_found"              // 404
	CodeMethodNotAllowed = "method_not_allowed"     // 405
	CodeNameTaken        = "name_taken"             // 409
	CodeReadOnly         = "read_only"              // 409: a webhook of the config file
	CodeQueued           = "queued"                 // 409: redeliver of a delivery still queued or being delivered
	CodeTooLarge         = "too_large"              // 413
	CodeUnsupportedMedia = "unsupported_media_type" // 415
	CodeInternal         = "internal"               // 500
	CodeUnavailable      = "unavailable"            // 503: the store cannot be reached; retry later
)
