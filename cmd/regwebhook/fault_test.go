package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/history"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// Fault tests (issue 8): regwebhook as a process, on the embedded store and
// on Redis, killed with SIGKILL under load, delivering to receivers that
// time out, reset connections or answer 500 or 429, and sent the same
// envelope more than once. docs/design.md ("Faults") says what they show.

// Killed with SIGKILL five times during a steady load of pushes, and
// restarted each time on the same data directory or Redis prefix,
// regwebhook delivers every event the registry was answered 2xx for to
// every webhook whose scope matches it, and to no other. Deliveries cut by a
// kill come again (at least once); the duplicates are logged.
func TestFaultKilledFiveTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	forEachStore(t, func(t *testing.T, store string) {
		const events, kills = 200, 5
		all := hooktest.New(t, hooktest.Delay(20*time.Millisecond))
		tagged := hooktest.New(t, hooktest.Delay(20*time.Millisecond))
		none := hooktest.New(t)
		cfg, addr := faultConfig(t, store,
			"delivery: {workers: 8, perwebhook: 4, timeout: 2s, lease: 3s, retry: {initial: 50ms, max: 500ms}}",
			fmt.Sprintf(`{name: faultall, uri: "%s/all"}`, all.URL()),
			fmt.Sprintf(`{name: faulttagged, uri: "%s/tagged", scope: "app:t1*"}`, tagged.URL()),
			fmt.Sprintf(`{name: faultnone, uri: "%s/none", scope: "other:*"}`, none.URL()))
		p := startServe(t, cfg, addr)

		reg := newRegistryClient(func() string { return addr })
		bodies := pushBodies(t, events)
		loaded := make(chan struct{})
		go func() {
			defer close(loaded)
			for _, b := range bodies {
				if !reg.send(t, b) {
					return
				}
				time.Sleep(5 * time.Millisecond) // steady, not a burst
			}
		}()
		for k := 1; k <= kills; k++ {
			poll(t, time.Minute, func() bool { return reg.answered.Load() >= int64(k*events/(kills+1)) },
				func() string { return fmt.Sprintf("before kill %d: %d envelopes answered", k, reg.answered.Load()) })
			// Mid-delivery, when a delivery comes within a second.
			for deadline := time.Now().Add(time.Second); all.InFlight()+tagged.InFlight() == 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			inFlight := all.InFlight() + tagged.InFlight()
			p.signal(t, syscall.SIGKILL)
			<-p.waitExit()
			t.Logf("kill %d: %d envelopes answered, %d deliveries received, %d in flight", k, reg.answered.Load(), all.Count()+tagged.Count(), inFlight)
			p = startServe(t, cfg, addr)
		}
		select {
		case <-loaded:
		case <-time.After(3 * time.Minute):
			t.Fatalf("the load did not end: %d of %d envelopes answered", reg.answered.Load(), events)
		}
		if n := reg.answered.Load(); n != events {
			t.Fatalf("%d of %d envelopes answered 2xx", n, events)
		}

		matched := []struct {
			name string
			hook *hooktest.Receiver
			want map[string]bool
		}{
			{"faultall", all, matching(events, "*")},
			{"faulttagged", tagged, matching(events, "t1*")},
		}
		for _, c := range matched {
			waitDelivered(t, c.hook, c.want, time.Minute)
		}
		waitQueueEmpty(t, addr)
		for _, c := range matched {
			got := received(t, c.hook)
			for id := range got {
				if !c.want[id] {
					t.Errorf("%s got event %s, which its scope does not match", c.name, id)
				}
			}
			t.Logf("%s: all %d matching events delivered; %d deliveries, %d duplicates", c.name, len(c.want), c.hook.Count(), duplicates(got))
		}
		if n := none.Count(); n != 0 {
			t.Errorf("faultnone (scope other:*) got %d deliveries, want none", n)
		}
		t.Logf("%d posts were refused or unanswered while regwebhook was down, and sent again", reg.refused.Load())
	})
}

// faulty is a webhook receiver that fails in one way until healed: it holds
// the answer past regwebhook's time-out ("timeout"), resets the connection
// ("reset"), answers 500 ("500"), or answers 429 with Retry-After: 1
// ("429"). Healed, it answers 200.
type faulty struct {
	mode   string
	srv    *httptest.Server
	healed atomic.Bool
	stop   chan struct{}

	mu  sync.Mutex
	got []faultRequest
}

// faultRequest is one request a faulty receiver got.
type faultRequest struct {
	at       time.Time
	delivery string // X-Regwebhook-Delivery
	event    string // the payload's id
	status   int    // what it answered; 0: no answer
}

func newFaulty(t *testing.T, mode string) *faulty {
	t.Helper()
	f := &faulty{mode: mode, stop: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stop) }) // before Close, which waits for held requests
	return f
}

func (f *faulty) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p struct{ ID string }
	_ = json.Unmarshal(body, &p)
	q := faultRequest{at: time.Now(), delivery: r.Header.Get("X-Regwebhook-Delivery"), event: p.ID, status: http.StatusOK}
	healed := f.healed.Load()
	if !healed {
		switch f.mode {
		case "500":
			q.status = http.StatusInternalServerError
		case "429":
			q.status = http.StatusTooManyRequests
		default:
			q.status = 0
		}
	}
	f.mu.Lock()
	f.got = append(f.got, q)
	f.mu.Unlock()
	if healed {
		return
	}
	switch f.mode {
	case "timeout":
		select {
		case <-r.Context().Done(): // regwebhook gave up
		case <-f.stop:
		}
	case "reset":
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler) // closes the connection all the same
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
	case "429":
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	default:
		w.WriteHeader(q.status)
	}
}

func (f *faulty) requests() []faultRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]faultRequest(nil), f.got...)
}

// delivered reports whether every event of ids was answered 200.
func (f *faulty) delivered(ids []string) bool {
	ok := map[string]bool{}
	for _, q := range f.requests() {
		if q.status == http.StatusOK {
			ok[q.event] = true
		}
	}
	for _, id := range ids {
		if !ok[id] {
			return false
		}
	}
	return true
}

// showWebhook is GET /api/v1/webhooks/name, as a loopback client without a
// token may ask.
func showWebhook(t *testing.T, addr, name string) api.Webhook {
	t.Helper()
	var w api.Webhook
	getJSON(t, "http://"+addr+api.Prefix+"/webhooks/"+name, &w)
	return w
}

// Receivers that time out, reset the connection, answer 500, or answer 429
// with Retry-After are retried with the same delivery id until they answer
// 2xx, and then not again. While they fail, show says since when and with
// what error (the URI's path never in it), history has every failed attempt
// with its error, and regwebhook_webhook_failing is 1; once they recover it
// is 0 and the error is gone. A 429 pauses the whole webhook for its
// Retry-After: no request to it comes sooner, for any of its jobs.
func TestFaultReceivers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	forEachStore(t, func(t *testing.T, store string) {
		const timeout = 500 * time.Millisecond
		receivers := map[string]*faulty{
			"faulttimeout":  newFaulty(t, "timeout"),
			"faultreset":    newFaulty(t, "reset"),
			"faulterror":    newFaulty(t, "500"),
			"faultthrottle": newFaulty(t, "429"),
		}
		names := make([]string, 0, len(receivers))
		var hooks []string
		for name, f := range receivers {
			names = append(names, name)
			hooks = append(hooks, fmt.Sprintf(`{name: %s, uri: "%s/hooks/secretpath?token=secretquery"}`, name, f.srv.URL))
		}
		sort.Strings(names)
		cfg, addr := faultConfig(t, store,
			fmt.Sprintf("delivery: {workers: 8, perwebhook: 4, timeout: %s, lease: 3s, retry: {initial: 100ms, max: 2s, maxattempts: 100}}", timeout),
			hooks...)
		startServe(t, cfg, addr)
		reg := newRegistryClient(func() string { return addr })
		bodies := pushBodies(t, 2)
		events := []string{eventID(0), eventID(1)}
		for _, b := range bodies {
			reg.send(t, b)
		}

		// Failing: three attempts each at least.
		for _, name := range names {
			f := receivers[name]
			poll(t, time.Minute, func() bool { return len(f.requests()) >= 3 },
				func() string { return fmt.Sprintf("%s got %d requests, want 3", name, len(f.requests())) })
		}
		wantError := map[string]func(string) bool{
			"faulttimeout": func(e string) bool {
				return e == fmt.Sprintf("no answer from %s/… within %s", receivers["faulttimeout"].srv.URL, timeout)
			},
			"faultreset": func(e string) bool {
				return strings.HasPrefix(e, "Post "+receivers["faultreset"].srv.URL+"/…: ") &&
					(strings.Contains(e, "reset") || strings.Contains(e, "EOF"))
			},
			"faulterror":    func(e string) bool { return e == "answered 500 Internal Server Error" },
			"faultthrottle": func(e string) bool { return e == "answered 429 Too Many Requests" },
		}
		wantOutcome := map[string]string{"faulttimeout": "timeout", "faultreset": "network", "faulterror": "status_5xx", "faultthrottle": "retry_after"}
		metrics := scrape(t, addr)
		for _, name := range names {
			w := showWebhook(t, addr, name)
			if !wantError[name](w.LastError) || strings.Contains(w.LastError, "secret") {
				t.Errorf("%s while failing: lastError %q", name, w.LastError)
			}
			if w.FailingSince == nil || w.LastDelivery == nil || w.LastDelivery.Status != api.DeliveryFailed {
				t.Errorf("%s while failing: failingSince %v, lastDelivery %+v", name, w.FailingSince, w.LastDelivery)
			}
			if got := metrics[`regwebhook_webhook_failing{webhook="`+name+`"}`]; got != 1 {
				t.Errorf("%s while failing: regwebhook_webhook_failing %v, want 1", name, got)
			}
			since, ok := metrics[`regwebhook_webhook_failing_since_seconds{webhook="`+name+`"}`]
			if first := receivers[name].requests()[0].at; !ok || since > float64(first.UnixNano())/1e9+0.001 {
				t.Errorf("%s while failing: regwebhook_webhook_failing_since_seconds %v (present %v), want the start of its first attempt, before %v",
					name, since, ok, first)
			}
			if got := metrics[`regwebhook_deliveries_total{outcome="`+wantOutcome[name]+`",webhook="`+name+`"}`]; got < 3 {
				t.Errorf("%s: %v attempts counted with outcome %s, want 3 or more", name, got, wantOutcome[name])
			}
		}

		// Recovered: each event delivered, once; nothing left to retry.
		for _, f := range receivers {
			f.healed.Store(true)
		}
		for _, name := range names {
			f := receivers[name]
			poll(t, time.Minute, func() bool { return f.delivered(events) },
				func() string { return fmt.Sprintf("%s has not taken both events after it recovered", name) })
		}
		waitQueueEmpty(t, addr)
		metrics = scrape(t, addr)
		for _, name := range names {
			reqs := receivers[name].requests()
			checkRetried(t, name, reqs, events)
			checkHistory(t, addr, name, reqs, wantError[name])
			w := showWebhook(t, addr, name)
			if w.LastError != "" || w.FailingSince != nil || w.LastDelivery == nil || w.LastDelivery.Status != api.DeliverySucceeded {
				t.Errorf("%s after recovery: lastError %q, failingSince %v, lastDelivery %+v; want a success and neither",
					name, w.LastError, w.FailingSince, w.LastDelivery)
			}
			if got, ok := metrics[`regwebhook_webhook_failing{webhook="`+name+`"}`]; !ok || got != 0 {
				t.Errorf("%s after recovery: regwebhook_webhook_failing %v (present %v), want 0", name, got, ok)
			}
			if _, ok := metrics[`regwebhook_webhook_failing_since_seconds{webhook="`+name+`"}`]; ok {
				t.Errorf("%s after recovery: regwebhook_webhook_failing_since_seconds still exported", name)
			}
			t.Logf("%s: %d requests for %d events", name, len(reqs), len(events))
		}

		// 429 with Retry-After: 1 pauses the webhook, all its jobs: no
		// request comes within a second of one answered 429.
		reqs := receivers["faultthrottle"].requests()
		for i := 1; i < len(reqs); i++ {
			if reqs[i-1].status == http.StatusTooManyRequests && reqs[i].at.Sub(reqs[i-1].at) < time.Second {
				t.Errorf("request %d to faultthrottle came %v after a 429 with Retry-After: 1, want a second or more",
					i, reqs[i].at.Sub(reqs[i-1].at))
			}
		}
	})
}

// checkRetried checks what a receiver got: each event under one delivery
// id, retried until one 200, and no request for it after that.
func checkRetried(t *testing.T, name string, reqs []faultRequest, events []string) {
	t.Helper()
	for _, id := range events {
		var delivery string
		oks, after := 0, 0
		for _, q := range reqs {
			if q.event != id {
				continue
			}
			if delivery == "" {
				delivery = q.delivery
			}
			if q.delivery != delivery {
				t.Errorf("%s: event %s came with delivery ids %s and %s, want one", name, id, delivery, q.delivery)
			}
			if oks > 0 {
				after++
			}
			if q.status == http.StatusOK {
				oks++
			}
		}
		if oks != 1 || after != 0 {
			t.Errorf("%s: event %s answered 200 %d times, with %d requests after the first; want once, and none after", name, id, oks, after)
		}
	}
}

// checkHistory checks a webhook's history against what its receiver got:
// an entry per request, attempts numbered 1, 2, … per delivery, each failed
// one with its error, the last a success with the 200.
func checkHistory(t *testing.T, addr, name string, reqs []faultRequest, wantError func(string) bool) {
	t.Helper()
	var events api.Events
	getJSON(t, "http://"+addr+api.Prefix+"/webhooks/"+name+"/events?limit=1000", &events)
	byDelivery := map[string][]history.Entry{}
	for _, e := range events.Items {
		byDelivery[e.ID] = append(byDelivery[e.ID], e)
	}
	perDelivery := map[string]int{}
	for _, q := range reqs {
		perDelivery[q.delivery]++
	}
	for delivery, n := range perDelivery {
		entries := byDelivery[delivery]
		sort.Slice(entries, func(i, j int) bool { return entries[i].Attempt < entries[j].Attempt })
		if len(entries) != n {
			t.Errorf("%s: delivery %s has %d history entries, want one per request the receiver got (%d)", name, delivery, len(entries), n)
			continue
		}
		for i, e := range entries {
			last := i == len(entries)-1
			switch {
			case e.Attempt != i+1:
				t.Errorf("%s: delivery %s: attempt numbers %d at position %d, want %d", name, delivery, e.Attempt, i, i+1)
			case !last && (!wantError(e.Error) || strings.Contains(e.Error, "secret")):
				t.Errorf("%s: delivery %s attempt %d: error %q", name, delivery, e.Attempt, e.Error)
			case last && (e.Error != "" || e.Response == nil || e.Response.StatusCode != http.StatusOK):
				t.Errorf("%s: delivery %s: the last attempt %d has error %q, response %+v; want the 200", name, delivery, e.Attempt, e.Error, e.Response)
			}
			if e.Request.RequestURI != history.MaskURI(e.Request.RequestURI) || strings.Contains(e.Request.RequestURI, "secret") {
				t.Errorf("%s: history shows the request URI %q", name, e.Request.RequestURI)
			}
		}
	}
}

// The registry sends an envelope again when it missed the answer, and may
// do so while the first is still being committed. However often an event
// comes — twice in a row, eight times at once, twice in one envelope, and
// again after regwebhook was killed and restarted — each matching webhook
// gets it once.
func TestFaultDuplicateEnvelopes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regwebhook as a process")
	}
	forEachStore(t, func(t *testing.T, store string) {
		const events = 21
		all, tagged := hooktest.New(t), hooktest.New(t)
		cfg, addr := faultConfig(t, store,
			"delivery: {workers: 8, perwebhook: 4, timeout: 2s, lease: 3s, retry: {initial: 50ms, max: 500ms}}",
			fmt.Sprintf(`{name: faultall, uri: "%s/all"}`, all.URL()),
			fmt.Sprintf(`{name: faulttagged, uri: "%s/tagged", scope: "app:t1*"}`, tagged.URL()))
		p := startServe(t, cfg, addr)
		bodies := pushBodies(t, events)
		// The last envelope holds its event twice.
		var env struct{ Events []json.RawMessage }
		if err := json.Unmarshal(bodies[events-1], &env); err != nil {
			t.Fatal(err)
		}
		twice, err := json.Marshal(map[string]any{"events": []json.RawMessage{env.Events[0], env.Events[0]}})
		if err != nil {
			t.Fatal(err)
		}
		bodies[events-1] = twice

		reg := newRegistryClient(func() string { return addr })
		for n := range 10 { // twice in a row
			reg.send(t, bodies[n])
			reg.send(t, bodies[n])
		}
		for n := 10; n < events; n++ { // eight at once, each on its own connection
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					newRegistryClient(func() string { return addr }).send(t, bodies[n])
				}()
			}
			wg.Wait()
		}

		want := map[string]map[string]bool{"faultall": matching(events, "*"), "faulttagged": matching(events, "t1*")}
		hooks := map[string]*hooktest.Receiver{"faultall": all, "faulttagged": tagged}
		check := func(when string) {
			t.Helper()
			for name, hook := range hooks {
				waitDelivered(t, hook, want[name], time.Minute)
			}
			waitQueueEmpty(t, addr)
			for name, hook := range hooks {
				for id, n := range received(t, hook) {
					if n != 1 || !want[name][id] {
						t.Errorf("%s: %s got event %s %d times; want it once, and only if its scope matches", when, name, id, n)
					}
				}
				if hook.Count() != len(want[name]) {
					t.Errorf("%s: %s got %d deliveries, want %d", when, name, hook.Count(), len(want[name]))
				}
			}
		}
		check("sent twice, and eight times at once")

		// Killed and restarted, it still knows the events: all of them
		// again deliver nothing.
		p.signal(t, syscall.SIGKILL)
		<-p.waitExit()
		p = startServe(t, cfg, addr)
		for _, b := range bodies {
			reg.send(t, b)
		}
		check("sent again after a SIGKILL and a restart")
		var accepted struct{ Accepted, Dropped int }
		resp, err := http.Post("http://"+p.addr+"/v1/notifications", "application/json", bytes.NewReader(bodies[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&accepted); err != nil || resp.StatusCode != http.StatusOK || accepted.Accepted != 1 {
			t.Errorf("a duplicate envelope answered %d %+v (%v), want 200 with the event accepted: the registry must not retry it", resp.StatusCode, accepted, err)
		}
	})
}
