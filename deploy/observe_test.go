package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/server"
	"github.com/regwebhook/regwebhook/config"
	"github.com/regwebhook/regwebhook/internal/hooktest"
	"github.com/regwebhook/regwebhook/internal/registrytest"
)

// Secrets of the run below: none may appear in the log.
const (
	receiverToken = "receiver-token-5ec12e7"
	wrongToken    = "wrong-token-0ddba11"
	headerValue   = "header-value-c0ffee"
	apiKeyValue   = "api-key-value-f00d"
	pathSecret    = "path-secret-beef"
	signingSecret = "whsec_MKImHUPPZsrfGtUZriHpwUUNVhV1UgvUVo85TvEyj6Y="
)

// lockedBuffer takes the server's log from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scrape returns /metrics as samples ("name{labels}" as exported, labels
// sorted: value) and families (name: type).
func scrape(t *testing.T, addr string) (samples map[string]float64, families map[string]string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	samples, families = map[string]float64{}, map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			families[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples, families
}

// delta is what changed between two scrapes, for the samples named.
func delta(before, after map[string]float64, names []string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		out[n] = after[n] - before[n]
	}
	return out
}

// The operator's view of one pushed image, delivered to a webhook that
// takes it and to one that fails until its job is dead: /metrics counts
// each step, the alert rules of examples/alerts.yml find every metric they
// use, and the log names the delivery and webhook on every line about a
// delivery, and never shows a token, header value, secret or URI path.
func TestOperatorsView(t *testing.T) {
	ok := hooktest.New(t)
	failing := hooktest.New(t, hooktest.Statuses(500))
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Store.Embedded.Path = t.TempDir()
	cfg.Store.Embedded.Sync = "normal"
	cfg.Receiver.Token = receiverToken
	cfg.Delivery.Workers = 12 // not the default: regwebhook_delivery_workers shows the file's
	cfg.Delivery.Retry = config.Retry{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 2, MaxAge: time.Hour}
	cfg.Webhooks = []*rule.Webhook{
		{Name: "takesall01", URI: ok.URL() + "/hooks/" + pathSecret, Headers: map[string]string{"Authorization": "Bearer " + headerValue}, Secret: signingSecret},
		{Name: "failsall01", URI: failing.URL() + "/hooks/" + pathSecret + "?key=" + apiKeyValue, Headers: map[string]string{"X-Api-Key": apiKeyValue}},
	}
	for _, w := range cfg.Webhooks {
		w.Defaults()
		w.Source = rule.FromConfig
	}
	logs := &lockedBuffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetLevel(logrus.DebugLevel)
	log.SetFormatter(&logrus.JSONFormatter{})
	srv, err := server.New(context.Background(), server.Params{Config: cfg, Log: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	before, _ := scrape(t, srv.Addr())

	// A registry with the wrong token is refused, and counted.
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+"/v1/notifications", strings.NewReader(`{"events":[]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+wrongToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %s, want 401", resp.Status)
	}

	reg := registrytest.Start(t, registrytest.Options{
		NotifyURL:   "http://" + srv.Addr() + "/v1/notifications",
		NotifyToken: receiverToken,
	})
	reg.PushImage(t, "team/app", "v1")
	ok.WaitFor(t, 1, 30*time.Second)
	failing.WaitFor(t, 2, 30*time.Second)
	// A worker logs the end of a job after it counted it and stored it:
	// once both lines are there, one scrape sees everything.
	waitFor(t, "the deliveries to end", func() bool {
		text := logs.String()
		return strings.Contains(text, `"msg":"delivered"`) && strings.Contains(text, `"msg":"delivery moved to dead letters"`)
	})
	after, _ := scrape(t, srv.Addr())

	t.Run("metrics", func(t *testing.T) {
		names := []string{
			`regwebhook_events_received_total{action="push"}`,
			`regwebhook_envelopes_rejected_total{code="unauthorized"}`,
			`regwebhook_deliveries_total{outcome="ok",webhook="takesall01"}`,
			`regwebhook_deliveries_total{outcome="status_5xx",webhook="failsall01"}`,
			`regwebhook_delivery_duration_seconds_count`,
			`regwebhook_dead_letters_total{cause="failed"}`,
			`regwebhook_dead_letters_total{cause="expired"}`,
			`regwebhook_queue_jobs{state="dead"}`,
			`regwebhook_queue_jobs{state="ready"}`,
			`regwebhook_store_errors_total{op="ingest"}`,
			`regwebhook_store_errors_total{op="lease"}`,
		}
		want := map[string]float64{
			`regwebhook_events_received_total{action="push"}`:                        1,
			`regwebhook_envelopes_rejected_total{code="unauthorized"}`:               1,
			`regwebhook_deliveries_total{outcome="ok",webhook="takesall01"}`:         1,
			`regwebhook_deliveries_total{outcome="status_5xx",webhook="failsall01"}`: 2, // tried, retried
			`regwebhook_delivery_duration_seconds_count`:                             3,
			`regwebhook_dead_letters_total{cause="failed"}`:                          1,
			`regwebhook_dead_letters_total{cause="expired"}`:                         0,
			`regwebhook_queue_jobs{state="dead"}`:                                    1,
			`regwebhook_queue_jobs{state="ready"}`:                                   0,
			`regwebhook_store_errors_total{op="ingest"}`:                             0,
			`regwebhook_store_errors_total{op="lease"}`:                              0,
		}
		if diff := cmp.Diff(want, delta(before, after, names)); diff != "" {
			t.Errorf("change of /metrics over the push (-want +got):\n%s", diff)
		}
		// What alerts count with increase() is there before the first event,
		// or the first would be missed.
		for _, n := range []string{
			`regwebhook_envelopes_rejected_total{code="unauthorized"}`,
			`regwebhook_envelopes_rejected_total{code="unavailable"}`,
			`regwebhook_dead_letters_total{cause="failed"}`,
			`regwebhook_store_errors_total{op="ingest"}`,
			`regwebhook_store_errors_total{op="depth"}`,
			`regwebhook_delivery_duration_seconds_count`,
		} {
			if _, ok := before[n]; !ok {
				t.Errorf("%s is not exported before its first event", n)
			}
		}
		if after[`regwebhook_events_dropped_total{reason="blob"}`] == 0 {
			t.Error("the push's blob events are not counted as dropped")
		}
		if got := after[`regwebhook_delivery_workers`]; got != float64(cfg.Delivery.Workers) {
			t.Errorf("regwebhook_delivery_workers %v, want delivery.workers %d", got, cfg.Delivery.Workers)
		}
		if after[`regwebhook_store_up`] != 1 || after[`regwebhook_store_persistence_warnings`] != 0 {
			t.Errorf("store up %v, persistence warnings %v; want 1 and 0", after[`regwebhook_store_up`], after[`regwebhook_store_persistence_warnings`])
		}
	})

	t.Run("alert rules", func(t *testing.T) {
		_, families := scrape(t, srv.Addr())
		exported := map[string]bool{}
		for name, typ := range families {
			exported[name] = true
			if typ == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[name+s] = true
				}
			}
		}
		for _, r := range alertRules(t) {
			for _, m := range metricNames(r.Expr) {
				if m == "up" {
					continue // Prometheus's own, per scrape target
				}
				if !exported[m] {
					t.Errorf("alert %s uses %s, which /metrics does not export", r.Alert, m)
				}
			}
		}
	})

	t.Run("log", func(t *testing.T) {
		text := logs.String()
		var signatures []string
		for _, r := range ok.Requests() {
			signatures = append(signatures, r.Header.Get("Webhook-Signature"))
		}
		for _, secret := range append([]string{receiverToken, wrongToken, headerValue, apiKeyValue, pathSecret,
			strings.TrimPrefix(signingSecret, "whsec_")}, signatures...) {
			if strings.Contains(text, secret) {
				t.Errorf("the log shows %q", secret)
			}
		}
		type line struct{ Msg, Webhook string }
		var got []line
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("log line %q: %v", sc.Text(), err)
			}
			if _, about := e["delivery"]; !about {
				continue
			}
			for _, field := range []string{"delivery", "event", "webhook", "webhookId"} {
				if s, _ := e[field].(string); s == "" {
					t.Errorf("a line about a delivery has no %s: %s", field, sc.Text())
				}
			}
			w, _ := e["webhook"].(string)
			got = append(got, line{Msg: e["msg"].(string), Webhook: w})
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Msg+got[i].Webhook < got[j].Msg+got[j].Webhook })
		want := []line{
			{"delivered", "takesall01"},
			{"delivery failed; will retry", "failsall01"},
			{"delivery moved to dead letters", "failsall01"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("log lines about deliveries (-want +got):\n%s", diff)
		}
	})
}

// waitFor polls cond until it holds, or fails the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alertRule is one alert rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertRules reads examples/alerts.yml strictly, as Prometheus would refuse
// an unknown key, and checks that each rule is complete.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "examples", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && err != io.EOF {
		t.Fatalf("examples/alerts.yml: %v", err)
	}
	var rules []alertRule
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("examples/alerts.yml: rule %q lacks alert, expr, labels.severity or annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("examples/alerts.yml: rule %s: for: %v", r.Alert, err)
				}
			}
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		t.Fatal("examples/alerts.yml has no rules")
	}
	return rules
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promOperators = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, that are not functions (followed by "(") or
// keywords.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var out []string
	for _, span := range promIdent.FindAllStringIndex(s, -1) {
		name := s[span[0]:span[1]]
		if span[0] > 0 && strings.ContainsAny(s[span[0]-1:span[0]], "0123456789.") {
			continue // the exponent or unit of a number: 1e3, 5m
		}
		call := strings.HasPrefix(strings.TrimLeft(s[span[1]:], " \t\n"), "(")
		if call || promOperators[strings.ToLower(name)] || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`up{job="regwebhook"} == 0`, "up"},
		{`sum by (instance, code) (increase(regwebhook_envelopes_rejected_total{code=~"unauthorized|unavailable"}[10m])) > 0`, "regwebhook_envelopes_rejected_total"},
		{"sum by (webhook) (rate(a_total{outcome!=\"ok\"}[15m])) > 0\nunless\nsum by (webhook) (rate(b_total[15m])) > 1e3", "a_total b_total"},
		{`histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[5m:1m]))) > 5`, "x_seconds_bucket"},
		{`max(q{state="ready"}) > 1000 and on(instance) r == bool 1 offset 5m`, "q r"},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, "m"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(strings.Fields(tt.want), metricNames(tt.expr)); diff != "" {
			t.Errorf("metricNames(%q) (-want +got):\n%s", tt.expr, diff)
		}
	}
}
