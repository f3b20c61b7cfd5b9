package hooktest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// answer is what a client saw.
type answer struct {
	Status     int
	RetryAfter string
}

// post sends body and reports the answer; it is safe in any goroutine.
func post(ctx context.Context, url, body string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}, nil
}

// waitUntil polls cond until it holds or fails the test after 5s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want []answer
	}{
		{"default is 200", nil, []answer{{200, ""}, {200, ""}, {200, ""}}},
		{"always fail", []Option{Statuses(500)}, []answer{{500, ""}, {500, ""}, {500, ""}}},
		{"sequence then last forever", []Option{Statuses(503, 503, 200)}, []answer{{503, ""}, {503, ""}, {200, ""}, {200, ""}}},
		{"retry-after only on failures", []Option{Statuses(429, 204), RetryAfter("7")}, []answer{{429, "7"}, {204, ""}, {204, ""}}},
		{"short delay still answers", []Option{Delay(10 * time.Millisecond), Statuses(202)}, []answer{{202, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(t, tc.opts...)
			var got []answer
			for i := range tc.want {
				a, err := post(t.Context(), r.URL()+"/hook", fmt.Sprintf(`{"n":%d}`, i))
				if err != nil {
					t.Fatalf("post %d: %v", i, err)
				}
				got = append(got, a)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			var statuses []int
			for _, q := range r.Requests() {
				statuses = append(statuses, q.Status)
			}
			var wantStatuses []int
			for _, a := range tc.want {
				wantStatuses = append(wantStatuses, a.Status)
			}
			if diff := cmp.Diff(wantStatuses, statuses); diff != "" {
				t.Errorf("recorded statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordsRequests(t *testing.T) {
	r := New(t)
	if _, err := post(t.Context(), r.URL()+"/v1/hook?x=1", `{"action":"push","n":2}`); err != nil {
		t.Fatal(err)
	}

	got := r.WaitFor(t, 1, 5*time.Second)
	want := []Request{{
		Method: http.MethodPost,
		Path:   "/v1/hook?x=1",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"action":"push","n":2}`),
		Status: http.StatusOK,
	}}
	opts := []cmp.Option{
		cmpopts.IgnoreFields(Request{}, "Received"),
		// Only the headers the test set; Go's client adds its own.
		cmp.Transformer("header", func(h http.Header) http.Header {
			return http.Header{"Content-Type": h.Values("Content-Type")}
		}),
	}
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got[0].Received.IsZero() {
		t.Error("Received is zero")
	}

	if diff := cmp.Diff(map[string]any{"action": "push", "n": 2.0}, got[0].Map(t)); diff != "" {
		t.Errorf("Map (-want +got):\n%s", diff)
	}
	var body struct {
		Action string `json:"action"`
		N      int    `json:"n"`
	}
	got[0].Decode(t, &body)
	if body.Action != "push" || body.N != 2 {
		t.Errorf("Decode = %+v, want {push 2}", body)
	}
}

func TestBlackHoleHoldsUntilRelease(t *testing.T) {
	r := New(t, BlackHole(), Statuses(503, 200))
	answers := make(chan answer, 3)
	for i := range 3 {
		go func() {
			a, err := post(context.Background(), r.URL(), fmt.Sprint(i))
			if err != nil {
				t.Errorf("post %d: %v", i, err)
			}
			answers <- a
		}()
	}

	waitUntil(t, "3 requests in flight", func() bool { return r.InFlight() == 3 })
	if n := r.Count(); n != 3 {
		t.Errorf("Count = %d while held, want 3", n)
	}
	select {
	case a := <-answers:
		t.Fatalf("black hole answered %+v before Release", a)
	default:
	}

	r.Release()
	var got []int
	for range 3 {
		got = append(got, (<-answers).Status)
	}
	waitUntil(t, "nothing in flight", func() bool { return r.InFlight() == 0 })
	if diff := cmp.Diff([]int{200, 200, 503}, got, cmpopts.SortSlices(func(a, b int) bool { return a < b })); diff != "" {
		t.Errorf("statuses after release (-want +got):\n%s", diff)
	}
	if n := r.MaxInFlight(); n != 3 {
		t.Errorf("MaxInFlight = %d, want 3", n)
	}

	r.Release() // twice is fine
	a, err := post(t.Context(), r.URL(), "after")
	if err != nil || a.Status != 200 {
		t.Errorf("after release: %+v, %v; want 200", a, err)
	}
}

func TestHeldRequestEndsWhenClientGivesUp(t *testing.T) {
	for _, opt := range []Option{BlackHole(), Delay(time.Hour)} {
		r := New(t, opt)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := post(ctx, r.URL(), "x")
			done <- err
		}()
		waitUntil(t, "request in flight", func() bool { return r.InFlight() == 1 })
		cancel()
		if err := <-done; err == nil {
			t.Error("client got an answer, want its own cancellation error")
		}
		waitUntil(t, "handler to give up", func() bool { return r.InFlight() == 0 })
	}
}

func TestHeldRequestAbortedAtTestEnd(t *testing.T) {
	done := make(chan error, 1)
	t.Run("holder", func(t *testing.T) {
		r := New(t, BlackHole())
		go func() {
			_, err := post(context.Background(), r.URL(), "x")
			done <- err
		}()
		waitUntil(t, "request in flight", func() bool { return r.InFlight() == 1 })
	})
	// The subtest's cleanup has run: the held request must have been cut,
	// not answered.
	if err := <-done; err == nil {
		t.Error("held request was answered at test end, want the connection closed")
	}
}

// fatalRecorder captures Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestWaitForReportsWhatArrived(t *testing.T) {
	r := New(t, Statuses(418))
	if _, err := post(t.Context(), r.URL()+"/only-one", `{"a":1}`); err != nil {
		t.Fatal(err)
	}

	f := &fatalRecorder{TB: t}
	if got := r.WaitFor(f, 2, 50*time.Millisecond); got != nil {
		t.Errorf("WaitFor returned %d requests on failure, want nil", len(got))
	}
	for _, want := range []string{"got 1 requests", "want at least 2", `#0 418 POST /only-one {"a":1}`} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("failure message %q does not contain %q", f.msg, want)
		}
	}
}
