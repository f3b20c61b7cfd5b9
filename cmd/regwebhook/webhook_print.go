package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/regwebhook/regwebhook/bridge/api"
	"github.com/regwebhook/regwebhook/bridge/history"
)

// How the output of the webhook commands reads. JSON output is the API's
// answer as it came, indented; a list is a JSON array of the API's items
// (every page of them, for list). Tables are aligned columns, as az's:
// "-" stands for a value that is absent.

// printJSON writes one JSON value of the API, indented.
func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("indent the API's answer: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// printJSONList writes items as one indented JSON array; [] when none.
func printJSONList(w io.Writer, items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	raw, err := json.Marshal(items)
	if err != nil {
		return fmt.Errorf("encode the list: %w", err)
	}
	return printJSON(w, raw)
}

// table writes aligned columns: cells separated by tabs, a row a line.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timeText is t in UTC to the second, as tables show times.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// printWebhooks writes the table of list, show, create and update.
func printWebhooks(w io.Writer, hooks []api.Webhook) error {
	t := newTable(w, "NAME", "STATUS", "SCOPE", "ACTIONS", "FORMAT", "SOURCE", "URI", "LAST DELIVERY", "FAILING SINCE")
	for _, h := range hooks {
		actions := make([]string, len(h.Actions))
		for i, a := range h.Actions {
			actions[i] = string(a)
		}
		scope := h.Scope
		if scope == "" {
			scope = "(all)"
		}
		last := "-"
		if d := h.LastDelivery; d != nil {
			last = timeText(d.Time) + " no answer"
			if d.StatusCode != 0 {
				last = timeText(d.Time) + " " + strconv.Itoa(d.StatusCode)
			}
		}
		since := "-"
		if h.FailingSince != nil {
			since = timeText(*h.FailingSince)
		}
		t.row(h.Name, string(h.Status), scope, strings.Join(actions, ","), string(h.Format), string(h.Source),
			h.URI, last, since)
	}
	return t.flush()
}

// printWebhook writes the table of show: list's row, and under it, while
// the webhook fails, since when and the error of its last attempt.
func printWebhook(w io.Writer, h api.Webhook) error {
	if err := printWebhooks(w, []api.Webhook{h}); err != nil {
		return err
	}
	if h.FailingSince == nil && h.LastError == "" {
		return nil
	}
	t := newTable(w)
	fmt.Fprintln(t.tw)
	if h.FailingSince != nil {
		t.row("failing since:", timeText(*h.FailingSince))
	}
	// The error may quote what the target answered (its reason phrase):
	// control characters are shown quoted, not sent to the terminal.
	text := oneLine(h.LastError)
	if strings.IndexFunc(text, unicode.IsControl) >= 0 {
		text = strconv.Quote(text)
	}
	t.row("last error:", orDash(text))
	return t.flush()
}

// printConfig writes what get-config answers, a field a line.
func printConfig(w io.Writer, c api.Config) error {
	t := newTable(w)
	t.row("URI", c.URI)
	if len(c.Headers) == 0 {
		t.row("HEADERS", "-")
	}
	for i, k := range sortedHeaders(c.Headers) {
		label := ""
		if i == 0 {
			label = "HEADERS"
		}
		t.row(label, k+": "+c.Headers[k])
	}
	t.row("SECRET", orDash(c.Secret))
	return t.flush()
}

// statusText is a response's status line: "200 OK".
func statusText(r *history.Response) string {
	reason := r.ReasonPhrase
	if reason == "" {
		reason = http.StatusText(r.StatusCode)
	}
	return strings.TrimSpace(strconv.Itoa(r.StatusCode) + " " + reason)
}

// printEvents writes history entries as list-events and ping show them: a
// table that sums each attempt up, then each attempt's request and
// response.
func printEvents(w io.Writer, entries []history.Entry) error {
	t := newTable(w, "ID", "ATTEMPT", "TIME", "ACTION", "STATUS", "DURATION", "ERROR")
	for _, e := range entries {
		status := "-"
		if e.Response != nil {
			status = statusText(e.Response)
		}
		t.row(e.ID, strconv.Itoa(e.Attempt), timeText(e.Timestamp), e.Action, status,
			(time.Duration(e.DurationMs) * time.Millisecond).String(), orDash(oneLine(e.Error)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, e := range entries {
		var b strings.Builder
		fmt.Fprintf(&b, "\n%s attempt %d: %s", e.ID, e.Attempt, orDash(e.Action))
		if e.EventID != "" && e.EventID != e.ID { // a ping's event id is its delivery id
			fmt.Fprintf(&b, " of event %s", e.EventID)
		}
		b.WriteString("\n")
		q := e.Request
		fmt.Fprintf(&b, "  request:  %s %s\n", q.Method, q.RequestURI)
		writeMessage(&b, q.Headers, q.Content, false)
		if r := e.Response; r != nil {
			fmt.Fprintf(&b, "  response: %s\n", statusText(r))
			writeMessage(&b, r.Headers, r.Content, len(r.Content) >= history.MaxContent)
		} else {
			fmt.Fprintf(&b, "  response: none: %s\n", orDash(oneLine(e.Error)))
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// writeMessage writes the headers (sorted, as history keeps them) and a
// summary of the body of a request or response, indented under its first
// line.
func writeMessage(b *strings.Builder, headers history.Headers, body string, cut bool) {
	const indent = "            "
	for _, h := range headers {
		fmt.Fprintf(b, "%s%s: %s\n", indent, h.Name, h.Value)
	}
	fmt.Fprintf(b, "%s%s\n", indent, bodySummary(body, cut))
}

// maxBodyShown is how many characters of a body list-events shows.
const maxBodyShown = 600

// bodySummary is a body on one line, with its size: JSON compacted, other
// text with its runs of white space made one space; cut to maxBodyShown
// characters, and quoted if control characters are left. cut says history
// kept only the body's start.
func bodySummary(body string, cut bool) string {
	if body == "" {
		return "body: empty"
	}
	var shown string
	var compact bytes.Buffer
	if json.Compact(&compact, []byte(body)) == nil {
		shown = compact.String()
	} else {
		shown = oneLine(body) // an HTML error page reads well enough so
	}
	more := ""
	if r := []rune(shown); len(r) > maxBodyShown {
		shown, more = string(r[:maxBodyShown]), "…"
	}
	if strings.IndexFunc(shown, unicode.IsControl) >= 0 {
		shown = strconv.Quote(shown)
	}
	size := fmt.Sprintf("%d bytes", len(body))
	if cut {
		size = fmt.Sprintf("first %d bytes kept", len(body))
	}
	return fmt.Sprintf("body (%s): %s%s", size, shown, more)
}

// oneLine is s with its line breaks made spaces, for a table cell.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// printDeadLetters writes the table of list-deadletters.
func printDeadLetters(w io.Writer, letters []api.DeadLetter) error {
	t := newTable(w, "ID", "EVENT", "ACTION", "ATTEMPTS", "CREATED", "DIED", "ERROR")
	for _, d := range letters {
		t.row(d.ID, d.EventID, d.Action, strconv.Itoa(d.Attempts), timeText(d.Created), timeText(d.Died), orDash(oneLine(d.Error)))
	}
	return t.flush()
}

// printCount writes a one-cell table: what was counted, and how many.
func printCount(w io.Writer, what string, n int) error {
	t := newTable(w, what)
	t.row(strconv.Itoa(n))
	return t.flush()
}
