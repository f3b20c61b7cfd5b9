package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
)

// statuses maps each error code to its HTTP status.
var statuses = map[string]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeNameTaken:        http.StatusConflict,
	CodeReadOnly:         http.StatusConflict,
	CodeQueued:           http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// fail answers with the error err stands for. An *ErrorDetail is answered as
// it is, a *rule.FieldError as invalid; otherwise the sentinels decide, and
// what is left is an internal error. The messages of errors the handlers did
// not write are not shown (they may name internal ids); store failures and
// internal errors are logged.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		d  *ErrorDetail
		fe *rule.FieldError
	)
	switch {
	case errors.As(err, &d):
	case errors.As(err, &fe):
		d = &ErrorDetail{Code: CodeInvalid, Message: fe.Error(), Field: fe.Field}
	case errors.Is(err, store.ErrUnavailable):
		a.Log.WithError(err).WithField("call", r.Method+" "+r.URL.Path).Error("API call failed: store unavailable")
		d = &ErrorDetail{Code: CodeUnavailable, Message: "store unavailable, retry later"}
	case errors.Is(err, store.ErrNotFound):
		d = &ErrorDetail{Code: CodeNotFound, Message: "not found"}
	default:
		a.Log.WithError(err).WithField("call", r.Method+" "+r.URL.Path).Error("API call failed")
		d = &ErrorDetail{Code: CodeInternal, Message: "internal error; the server log says more"}
	}
	status, ok := statuses[d.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, ErrorResponse{Error: *d})
}

// writeJSON answers v as JSON. Answers may hold secrets (get-config) and
// change with every call: nothing caches them.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
