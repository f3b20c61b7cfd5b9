package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"

	"github.com/regwebhook/regwebhook/internal/fixtures"
)

// The captured envelope every generated one copies: one pushed manifest by
// tag, exactly as a distribution v3 registry posts it (pretty-printed,
// with its content type).
const (
	envelopeType  = "application/vnd.docker.distribution.events.v2+json"
	fixtureID     = "01a218ff-f893-73b4-a099-3f5c0c3fff2b"
	fixtureReqID  = "01a218ff-f890-72ce-a5c9-2f234fe77bd4"
	fixtureRepo   = "app"
	fixtureTag    = "v1"
	fixtureDigest = "sha256:02097980afce18e8a00ddd101072ba72091fdc54ed6fb21141b623c2610332c1"
)

// workload makes the envelopes of one run: event seq goes to repository
// group seq % groups, with a unique id, tag and digest. Ids are
// "<run>-<seq>", which the receiver finds in any payload format, the
// registry's own envelope included.
type workload struct {
	run    string // random, lowercase letters and digits
	groups int
	parts  [][]byte // the fixture split around the values to fill in
	fill   []func(b []byte, seq int) []byte
}

// newRunID returns 8 random lowercase letters and digits.
func newRunID() string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [8]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b[:])
}

func newWorkload(run string, groups int) (*workload, error) {
	raw, err := fixtures.RawBody()
	if err != nil {
		return nil, err
	}
	w := &workload{run: run, groups: groups}
	// Each value to fill in, as it appears in the fixture's text.
	fields := []struct {
		old  string
		fill func(b []byte, seq int) []byte
	}{
		{`"id": "` + fixtureID + `"`, func(b []byte, seq int) []byte {
			return append(strconv.AppendInt(append(b, `"id": "`+w.run+`-`...), int64(seq), 10), '"')
		}},
		{`"id": "` + fixtureReqID + `"`, func(b []byte, seq int) []byte {
			return append(strconv.AppendInt(append(b, `"id": "req-`+w.run+`-`...), int64(seq), 10), '"')
		}},
		{`"repository": "` + fixtureRepo + `"`, func(b []byte, seq int) []byte {
			return append(append(append(b, `"repository": "`...), w.repo(seq%w.groups)...), '"')
		}},
		{`/v2/` + fixtureRepo + `/manifests/`, func(b []byte, seq int) []byte {
			return append(append(append(b, `/v2/`...), w.repo(seq%w.groups)...), `/manifests/`...)
		}},
		{`"tag": "` + fixtureTag + `"`, func(b []byte, seq int) []byte {
			return append(strconv.AppendInt(append(b, `"tag": "t`...), int64(seq), 10), '"')
		}},
		{fixtureDigest, func(b []byte, seq int) []byte {
			return fmt.Appendf(b, "sha256:%064x", seq)
		}},
	}
	text := string(raw)
	for {
		first, at := -1, len(text)
		for i, f := range fields {
			if j := strings.Index(text, f.old); j >= 0 && j < at {
				first, at = i, j
			}
		}
		if first < 0 {
			break
		}
		w.parts = append(w.parts, []byte(text[:at]))
		w.fill = append(w.fill, fields[first].fill)
		text = text[at+len(fields[first].old):]
	}
	w.parts = append(w.parts, []byte(text))
	if len(w.fill) != 7 { // two digests (digest and URL), one each of the rest
		return nil, fmt.Errorf("the captured envelope has %d values to fill in, want 7: the fixture changed", len(w.fill))
	}
	return w, nil
}

// repo is the repository of group g.
func (w *workload) repo(g int) string { return "load" + w.run + "/g" + strconv.Itoa(g) }

// envelope appends the body of envelope seq to b.
func (w *workload) envelope(b []byte, seq int) []byte {
	for i, f := range w.fill {
		b = append(b, w.parts[i]...)
		b = f(b, seq)
	}
	return append(b, w.parts[len(w.parts)-1]...)
}

// seqOf finds the event sequence number in a delivery's body: the digits
// after "<run>-".
func seqOf(body []byte, run string) (int, bool) {
	marker := []byte(run + "-")
	i := bytes.Index(body, marker)
	if i < 0 {
		return 0, false
	}
	n, j := 0, i+len(marker)
	for ; j < len(body) && body[j] >= '0' && body[j] <= '9'; j++ {
		n = n*10 + int(body[j]-'0')
	}
	return n, j > i+len(marker)
}
