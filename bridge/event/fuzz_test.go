package event_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/distribution/distribution/v3/notifications"

	"github.com/regwebhook/regwebhook/bridge/event"
	"github.com/regwebhook/regwebhook/bridge/payload"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/sqlite"
	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// seedEnvelopes adds every captured request body, each fixture's events
// together in one envelope (so that a push and the delete of the same
// manifest meet in one input), and hand-picked edge cases.
func seedEnvelopes(f *testing.F) {
	f.Helper()
	cases, err := fixtures.All()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		var all []json.RawMessage
		for _, r := range c.Requests {
			f.Add([]byte(r.Body))
			raws, err := event.ParseEnvelope(r.Body)
			if err != nil {
				f.Fatalf("fixture %s: %v", c.Name, err)
			}
			all = append(all, raws...)
		}
		b, err := json.Marshal(event.Envelope{Events: all})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	raw, err := fixtures.RawBody()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `[1]`, `"events"`, `{"events":null}`, `{"events":{}}`, `{"events":"[]"}`,
		`{"events":[]}`, `{"events":[null]}`, `{"events":[1,"x",[],{}]}`, `{"events":[],"events":{}}`,
		`{"events":[{"id":"a","action":"push","target":{"repository":"r","mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1","tag":"t"}}]}`,
		`{"events":[{"id":"b","action":"delete","target":{"repository":"r","digest":"sha256:1"}}]}`,
		`{"events":[{"id":"c","action":"delete","target":{"repository":"r","tag":"t"}}]}`,
		`{"events":[{"id":"d","action":"pull","target":{"repository":"r","url":"http://h/v2/r/manifests/t"}}]}`,
		`{"events":[{"id":"e","action":"push","target":{"repository":"r","size":1e400}}]}`,
		`{"events":[{"id":"f","action":"push","target":{"repository":"r","size":18446744073709551616}}]}`,
		`{"events":[{"id":"g","action":"push","timestamp":"9999-12-31T23:59:59-23:59","target":{"repository":"r","mediaType":"application/vnd.oci.image.index.v1+json","digest":"x"}}]}`,
		`{"events":[{"id":"h\u0000","action":"push\u2028","target":{"repository":"\ud800","mediaType":"application/vnd.oci.image.index.v1+json","digest":"<>&"}}]}`,
		"{\"events\":[{\"id\":\"\xff\",\"action\":\"delete\",\"target\":{\"repository\":\"\xfe\",\"tag\":\"\x80\"}}]}",
		"\xef\xbb\xbf{\"events\":[]}",
		`{"events":[` + strings.Repeat("[", 10001) + `]}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzEnvelope checks envelope decoding and normalization against the real
// embedded store's index, one store for the whole run so that the index
// fills up across inputs:
//   - ParseEnvelope takes a body exactly when it is a JSON object with an
//     "events" array (decoded independently here), or fails with
//     ErrEnvelope;
//   - an event that Parse takes has an id, an action and a repository;
//   - Normalize reads and writes the index without error and gives a known
//     reason; an event it keeps has a repository and action push, delete or
//     pull, its id and repository unchanged;
//   - every format renders a kept event as valid JSON, in UTF-8 for acr and
//     cloudevents; acr decodes back to the same id, action and repository.
func FuzzEnvelope(f *testing.F) {
	seedEnvelopes(f)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: f.TempDir(), Sync: "normal", Limits: store.Limits{History: 1, DeadLetters: 1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	reasons := map[event.Reason]bool{event.Kept: true, event.Invalid: true, event.Blob: true, event.UnknownDigest: true, event.Unsupported: true}

	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := event.ParseEnvelope(body)
		want, isEnvelope := oracleEvents(body)
		if err != nil {
			if !errors.Is(err, event.ErrEnvelope) {
				t.Fatalf("ParseEnvelope(%q): error %v is not ErrEnvelope", body, err)
			}
			if isEnvelope {
				t.Fatalf("ParseEnvelope(%q) refused an object with an events array: %v", body, err)
			}
			return
		}
		if !isEnvelope || len(raws) != want {
			t.Fatalf("ParseEnvelope(%q) = %d events; an independent decode says envelope %v with %d", body, len(raws), isEnvelope, want)
		}
		err = st.Ingest(ctx, func(tx store.Tx) error {
			for _, raw := range raws {
				n, err := event.Parse(raw)
				if err != nil {
					continue
				}
				if n.ID == "" || n.Action == "" || n.Target.Repository == "" {
					t.Fatalf("Parse(%s) took an event without id, action or repository: %+v", raw, n)
				}
				ev, reason, err := event.Normalize(ctx, n, raw, tx)
				if err != nil {
					return err
				}
				if !reasons[reason] {
					t.Fatalf("Normalize(%s): unknown reason %q", raw, reason)
				}
				if reason == event.Kept {
					checkKept(t, raw, &ev, n.ID, n.Target.Repository)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ingest %q: %v", body, err)
		}
	})
}

// oracleEvents decodes body on its own terms: is it an object with an
// "events" array, and how long is the array? Numbers stay text, as in the
// envelope's raw events.
func oracleEvents(body []byte) (int, bool) {
	var top map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return 0, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, false // more after the object
	}
	events, ok := top["events"].([]any)
	return len(events), ok
}

// checkKept checks a kept event and its payload in every format.
func checkKept(t *testing.T, raw json.RawMessage, ev *event.Event, id, repo string) {
	t.Helper()
	switch ev.Action {
	case event.Push, event.Delete, event.Pull:
	default:
		t.Fatalf("Normalize(%s) kept action %q", raw, ev.Action)
	}
	if ev.Target.Repository == "" || ev.Target.Repository != repo || ev.ID != id {
		t.Fatalf("Normalize(%s) kept id %q repository %q, from id %q repository %q", raw, ev.ID, ev.Target.Repository, id, repo)
	}
	for _, f := range []rule.Format{rule.ACR, rule.CloudEvents, rule.Envelope} {
		body, ct, err := payload.Render(f, ev)
		if err != nil || ct == "" || !json.Valid(body) {
			t.Fatalf("Render(%s, %s) = %q, %q, %v; want valid JSON", f, raw, body, ct, err)
		}
		if f != rule.Envelope && !utf8.Valid(body) {
			t.Errorf("Render(%s, %s) = %q: not UTF-8", f, raw, body)
		}
		if f == rule.Envelope {
			if _, err := event.ParseEnvelope(body); err != nil {
				t.Errorf("Render(envelope, %s) = %q is not an envelope: %v", raw, body, err)
			}
		}
	}
	body, _, _ := payload.Render(rule.ACR, ev)
	if want, err := reflected(ev); err != nil || !bytes.Equal(body, want) {
		t.Errorf("acr payload %s, want encoding/json's %s (%v)", body, want, err)
	}
	var back event.Event
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatalf("acr payload %s does not decode: %v", body, err)
	}
	// Parse gives UTF-8 strings (encoding/json replaces what is not), so
	// they come back exactly.
	if back.ID != id || back.Action != ev.Action || back.Target.Repository != repo {
		t.Errorf("acr payload %s decodes to id %q action %q repository %q, want %q %q %q",
			body, back.ID, back.Action, back.Target.Repository, id, ev.Action, repo)
	}
}

// FuzzParseLikeEncodingJSON checks that Parse, which decodes with
// github.com/goccy/go-json for speed, takes exactly the events
// encoding/json takes, with the same fields: the registry's types were
// written for encoding/json.
func FuzzParseLikeEncodingJSON(f *testing.F) {
	seedEnvelopes(f)
	for _, s := range []string{
		`{"ID":"a","Action":"push","TARGET":{"Repository":"r"}}`,
		`{"id":"a","id":"b","action":"push","target":{"repository":"r"}}`,
		`{"id":"a","action":"push","target":{"repository":"r","size":"1"}}`,
		`{"id":"a","action":"push","target":{"repository":"r","size":1.5}}`,
		`{"id":"a","action":"push","target":{"repository":"r","digest":1}}`,
		`{"id":"a","action":"push","timestamp":"2024-01-01","target":{"repository":"r"}}`,
		`{"id":"a","action":"push","timestamp":null,"target":null}`,
		`{"id":"a","action":"push","target":{"repository":"r","references":[{"digest":"sha256:1","size":2}],"annotations":{"k":"v"},"data":"aGk="}}`,
		`{"id":"a","action":"push","target":{"repository":"r","data":"not base64"}}`,
		`{"id":"a","action":"push","target":{"repository":"r","platform":{"os":"linux","architecture":"amd64"}}} `,
		`{"id":"a\u00e9\ud83d\ude00","action":"push","target":{"repository":"r\/s"}}`,
		`{"id":"a","action":"push","target":{"repository":"r"}}x`,
		`[{"id":"a"}]`, `"x"`, `1`, `{"id":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		raws := []json.RawMessage{data}
		if env, err := event.ParseEnvelope(data); err == nil {
			raws = append(raws, env...)
		}
		for _, raw := range raws {
			got, gotErr := event.Parse(raw)
			want, wantErr := parseStd(raw)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("Parse(%q): error %v; encoding/json: %v", raw, gotErr, wantErr)
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse(%q) = %+v; encoding/json: %+v", raw, got, want)
			}
		}
	})
}

// parseStd is Parse with encoding/json.
func parseStd(raw json.RawMessage) (notifications.Event, error) {
	var ev notifications.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, err
	}
	if ev.ID == "" || ev.Action == "" || ev.Target.Repository == "" {
		return ev, errors.New("missing id, action or repository")
	}
	return ev, nil
}
