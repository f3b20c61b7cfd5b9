package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// A ping is sent at once with the webhook's headers and signature, even
// while it is disabled; the API answers 200 with its history entry whatever
// the target answered, and the entry is in the history. Pings are not
// deliveries: they leave lastDelivery alone.
func TestPing(t *testing.T) {
	h := newHarness(t, options{})
	target := hooktest.New(t, hooktest.Statuses(200, 503))
	h.create(`{"name":"pinged","uri":"` + target.URL() + `/hook/s3cret-path","status":"disabled",
		"headers":{"Authorization":"Bearer s3cret"},"secret":"` + testSecret + `"}`)

	var pings []history.Entry
	for _, want := range []int{200, 503} {
		var e history.Entry
		h.want(http.StatusOK, post(hookPath("pinged", "/ping"), "")).decode(t, &e)
		if e.Action != "ping" || e.Attempt != 1 || e.Response == nil || e.Response.StatusCode != want || e.ID == "" {
			t.Fatalf("ping answered %+v, want a ping entry with status %d", e, want)
		}
		if want != 200 && e.Error == "" {
			t.Errorf("a ping answered %d has no error", want)
		}
		req := e.Request
		if req.RequestURI != "http://"+strings.TrimPrefix(target.URL(), "http://")+"/…" ||
			req.Headers.Get("Authorization") != "***" || req.Headers.Get("Webhook-Signature") != "***" || !strings.Contains(req.Content, `"action":"ping"`) {
			t.Errorf("ping entry request not masked as history shows it: %+v", req)
		}
		pings = append([]history.Entry{e}, pings...)
	}
	got := target.WaitFor(t, 2, 10*time.Second)
	for _, r := range got {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Webhook-Signature") == "" ||
			r.Header.Get("X-Regwebhook-Event") != "ping" || r.Path != "/hook/s3cret-path" {
			t.Errorf("the target got a ping without the webhook's headers or signature: %s %v", r.Path, r.Header)
		}
	}
	if diff := cmp.Diff(pings, h.history("pinged").Items, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if w := h.show("pinged"); w.LastDelivery != nil || w.FailingSince != nil {
		t.Errorf("after pings only: lastDelivery %+v, failingSince %v; want none", w.LastDelivery, w.FailingSince)
	}
	// An unreachable target: still 200, with the error in the entry.
	h.want(http.StatusOK, patch(hookPath("pinged"), `{"uri":"http://127.0.0.1:1/"}`))
	var e history.Entry
	h.want(http.StatusOK, post(hookPath("pinged", "/ping"), "")).decode(t, &e)
	if e.Response != nil || e.Error == "" {
		t.Errorf("ping of an unreachable target answered %+v, want an error and no response", e)
	}
}

// lastDelivery, failingSince and lastError follow the history: a success, then a run
// of failures that ends in a dead letter, then a redelivery that succeeds.
// A dead letter redelivered keeps its delivery id and says it is one.
func TestDeliveriesAndRedeliveries(t *testing.T) {
	h := newHarness(t, options{})
	// The first delivery succeeds, the next three attempts fail (the third
	// is the last: a dead letter), then every request succeeds.
	target := hooktest.New(t, hooktest.Statuses(200, 500, 500, 500, 200))
	h.create(`{"name":"delivered","uri":"` + target.URL() + `/hook","scope":"app:*"}`)

	h.push("app", "v1")
	first := target.WaitFor(t, 1, 10*time.Second)[0]
	firstID := first.Header.Get("X-Regwebhook-Delivery")
	h.eventually("the first delivery is in history", func() bool { return len(h.history("delivered").Items) == 1 })
	w := h.show("delivered")
	if w.LastDelivery == nil || w.LastDelivery.Status != api.DeliverySucceeded || w.LastDelivery.StatusCode != 200 ||
		w.LastDelivery.ID != firstID || w.FailingSince != nil || w.LastError != "" {
		t.Fatalf("after a success: lastDelivery %+v, failingSince %v, lastError %q", w.LastDelivery, w.FailingSince, w.LastError)
	}

	h.push("app", "v2")
	h.eventually("the second delivery is a dead letter", func() bool { return len(h.deadLetters("delivered").Items) == 1 })
	events := h.history("delivered").Items
	if len(events) != 4 {
		t.Fatalf("history has %d entries, want 4", len(events))
	}
	dead := h.deadLetters("delivered").Items[0]
	wantDead := api.DeadLetter{ID: events[0].ID, EventID: events[0].EventID, Action: "push", Attempts: 3,
		Error: "answered 500 Internal Server Error", ContentType: "application/json", Content: events[0].Request.Content}
	if diff := cmp.Diff(wantDead, dead, cmpopts.IgnoreFields(api.DeadLetter{}, "Created", "Died")); diff != "" {
		t.Errorf("dead letter (-want +got):\n%s", diff)
	}
	w = h.show("delivered")
	if w.LastDelivery == nil || w.LastDelivery.Status != api.DeliveryFailed || w.LastDelivery.StatusCode != 500 ||
		w.LastDelivery.ID != dead.ID || w.FailingSince == nil || !w.FailingSince.Equal(events[2].Timestamp) ||
		w.LastError != "answered 500 Internal Server Error" {
		t.Errorf("after three failures: lastDelivery %+v, failingSince %v, lastError %q; want failed 500 since %v",
			w.LastDelivery, w.FailingSince, w.LastError, events[2].Timestamp)
	}
	var limited api.Events
	h.want(http.StatusOK, get(hookPath("delivered", "/events?limit=2"))).decode(t, &limited)
	if diff := cmp.Diff(events[:2], limited.Items, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("events?limit=2 (-want +got):\n%s", diff)
	}

	// Redeliver the dead letter: it leaves the dead letters, comes with the
	// same delivery id marked as a redelivery, and succeeds.
	var q api.Queued
	h.want(http.StatusAccepted, post(hookPath("delivered", "/deliveries/"+dead.ID+"/redeliver"), "")).decode(t, &q)
	if q.Queued != 1 {
		t.Errorf("redeliver answered %+v", q)
	}
	again := target.WaitFor(t, 5, 10*time.Second)[4]
	if again.Header.Get("X-Regwebhook-Delivery") != dead.ID || again.Header.Get("X-Regwebhook-Redelivery") != "true" {
		t.Errorf("redelivery came with headers %v", again.Header)
	}
	h.eventually("the redelivery succeeded", func() bool {
		w = h.show("delivered")
		return w.LastDelivery != nil && w.LastDelivery.Status == api.DeliverySucceeded
	})
	if w.FailingSince != nil || w.LastError != "" || len(h.deadLetters("delivered").Items) != 0 {
		t.Errorf("after the redelivery: failingSince %v, lastError %q, dead letters %v", w.FailingSince, w.LastError, h.deadLetters("delivered").Items)
	}

	// Redeliver a delivery that succeeded, from history.
	h.want(http.StatusAccepted, post(hookPath("delivered", "/deliveries/"+firstID+"/redeliver"), ""))
	fromHistory := target.WaitFor(t, 6, 10*time.Second)[5]
	if fromHistory.Header.Get("X-Regwebhook-Delivery") != firstID || fromHistory.Header.Get("X-Regwebhook-Redelivery") != "true" ||
		string(fromHistory.Body) != string(first.Body) {
		t.Errorf("redelivery from history: %v %s, want the first delivery again", fromHistory.Header, fromHistory.Body)
	}
}

// A delivery still queued or being delivered cannot be redelivered: 409
// queued. Redelivering every dead letter queues them all; purging removes
// them.
func TestRedeliverConflictsAndDeadLetters(t *testing.T) {
	h := newHarness(t, options{})
	failing := hooktest.New(t, hooktest.Statuses(500))
	h.create(`{"name":"failing","uri":"` + failing.URL() + `/hook","scope":"app:*"}`)
	h.push("app", "v1")
	h.push("app", "v2")
	h.eventually("two dead letters", func() bool { return len(h.deadLetters("failing").Items) == 2 })
	dead := h.deadLetters("failing").Items

	// Disabled, the webhook holds a redelivered job in the queue.
	h.want(http.StatusOK, patch(hookPath("failing"), `{"status":"disabled"}`))
	h.want(http.StatusAccepted, post(hookPath("failing", "/deliveries/"+dead[0].ID+"/redeliver"), ""))
	a := h.want(http.StatusConflict, post(hookPath("failing", "/deliveries/"+dead[0].ID+"/redeliver"), ""))
	if code := a.errorCode(t); code != api.CodeQueued {
		t.Errorf("redeliver of a queued delivery: code %q, want %q", code, api.CodeQueued)
	}
	var q api.Queued
	h.want(http.StatusAccepted, post(hookPath("failing", "/deadletters/redeliver"), "")).decode(t, &q)
	if q.Queued != 1 || len(h.deadLetters("failing").Items) != 0 {
		t.Errorf("redeliver all queued %d, left %d dead letters; want 1 and 0", q.Queued, len(h.deadLetters("failing").Items))
	}
	if d := h.depth(); d.Ready != 2 {
		t.Errorf("depth %+v, want the 2 redelivered jobs held", d)
	}
	before := failing.Count()

	// Enabled again, both are tried and die again.
	h.want(http.StatusOK, patch(hookPath("failing"), `{"status":"enabled"}`))
	h.eventually("both die again", func() bool { return len(h.deadLetters("failing").Items) == 2 })
	if got := failing.Count() - before; got != 6 {
		t.Errorf("the target got %d requests after enabling, want 2 redeliveries × 3 attempts", got)
	}
	for _, d := range h.deadLetters("failing").Items {
		if !d.Redelivery || d.Attempts != 3 {
			t.Errorf("dead letter %+v, want a redelivery with 3 attempts", d)
		}
	}

	var p api.Purged
	h.want(http.StatusOK, del(hookPath("failing", "/deadletters"))).decode(t, &p)
	if p.Purged != 2 || len(h.deadLetters("failing").Items) != 0 {
		t.Errorf("purge answered %+v; dead letters left %v", p, h.deadLetters("failing").Items)
	}
	h.want(http.StatusOK, del(hookPath("failing", "/deadletters"))).decode(t, &p)
	if p.Purged != 0 {
		t.Errorf("purge again answered %+v", p)
	}
	var none api.Queued
	h.want(http.StatusAccepted, post(hookPath("failing", "/deadletters/redeliver"), "")).decode(t, &none)
	if none.Queued != 0 {
		t.Errorf("redeliver with no dead letters answered %+v", none)
	}
}

// A delivery in flight (leased) cannot be redelivered either.
func TestRedeliverWhileDelivering(t *testing.T) {
	h := newHarness(t, options{})
	hole := hooktest.New(t, hooktest.BlackHole())
	h.create(`{"name":"slowhook","uri":"` + hole.URL() + `/hook"}`)
	h.push("app", "v1")
	id := hole.WaitFor(t, 1, 10*time.Second)[0].Header.Get("X-Regwebhook-Delivery")
	a := h.want(http.StatusConflict, post(hookPath("slowhook", "/deliveries/"+id+"/redeliver"), ""))
	if code := a.errorCode(t); code != api.CodeQueued {
		t.Errorf("code %q, want %q", code, api.CodeQueued)
	}
	hole.Release()
	h.eventually("the delivery is done", func() bool { return len(h.history("slowhook").Items) == 1 })
	h.want(http.StatusAccepted, post(hookPath("slowhook", "/deliveries/"+id+"/redeliver"), ""))
	hole.WaitFor(t, 2, 10*time.Second)
}
