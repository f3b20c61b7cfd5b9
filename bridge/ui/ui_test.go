package ui_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/bridge/ui"
)

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := ui.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// answer is what a test reads of a response.
type answer struct {
	Status       int
	ContentType  string
	CSP          string
	NoSniff      string
	CacheControl string
	Location     string
}

func get(t *testing.T, srv *httptest.Server, method, p string, hdr map[string]string) (answer, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{
		Status:       resp.StatusCode,
		ContentType:  resp.Header.Get("Content-Type"),
		CSP:          resp.Header.Get("Content-Security-Policy"),
		NoSniff:      resp.Header.Get("X-Content-Type-Options"),
		CacheControl: resp.Header.Get("Cache-Control"),
		Location:     resp.Header.Get("Location"),
	}, body, resp.Header
}

// The files on disk are the page: each is served under /ui/ with its
// type, byte for byte, with the CSP. Nothing in them is filled in per
// request or per server: they hold no data.
func TestServesEveryFileWithItsType(t *testing.T) {
	srv := serve(t)
	want := map[string]string{
		".html": "text/html; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	names := staticFiles(t)
	if len(names) < 5 {
		t.Fatalf("static holds only %v", names)
	}
	paths := map[string]string{"/ui/": "index.html"}
	for _, n := range names {
		paths["/ui/"+n] = n
	}
	for p, n := range paths {
		t.Run(p, func(t *testing.T) {
			onDisk, err := os.ReadFile("static/" + n)
			if err != nil {
				t.Fatal(err)
			}
			got, body, _ := get(t, srv, http.MethodGet, p, nil)
			wantAnswer := answer{Status: 200, ContentType: want[path.Ext(n)], CSP: ui.CSP, NoSniff: "nosniff", CacheControl: "no-cache"}
			if diff := cmp.Diff(wantAnswer, got); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", p, diff)
			}
			if string(body) != string(onDisk) {
				t.Errorf("GET %s: body is not static/%s as it is on disk", p, n)
			}
		})
	}
}

func TestCSPAllowsOnlySelf(t *testing.T) {
	if !strings.HasPrefix(ui.CSP, "default-src 'self';") {
		t.Errorf("CSP %q does not start with default-src 'self'", ui.CSP)
	}
	for _, unsafe := range []string{"unsafe-inline", "unsafe-eval", "*", "data:", "http:"} {
		if strings.Contains(ui.CSP, unsafe) {
			t.Errorf("CSP %q allows %s", ui.CSP, unsafe)
		}
	}
}

// Anything else is 404, with the CSP too; only GET and HEAD are served;
// /ui redirects to the page.
func TestOtherPathsAndMethods(t *testing.T) {
	srv := serve(t)
	for _, tc := range []struct {
		method, path string
		want         answer
	}{
		{"GET", "/ui/nothing.js", answer{Status: 404}},
		{"GET", "/ui/static/app.js", answer{Status: 404}},
		{"GET", "/ui/index.html/", answer{Status: 404}},
		{"GET", "/ui/app.js.map", answer{Status: 404}},
		{"GET", "/ui/%2e%2e/go.mod", answer{Status: 404}},
		{"GET", "/uix", answer{Status: 404}},
		{"GET", "/", answer{Status: 404}},
		{"GET", "/api/v1/webhooks", answer{Status: 404}},
		{"POST", "/ui/", answer{Status: 405}},
		{"DELETE", "/ui/app.js", answer{Status: 405}},
		{"GET", "/ui", answer{Status: 301, ContentType: "text/html; charset=utf-8", Location: "/ui/"}},
		{"HEAD", "/ui/app.js", answer{Status: 200, ContentType: "text/javascript; charset=utf-8", CacheControl: "no-cache"}},
	} {
		got, _, _ := get(t, srv, tc.method, tc.path, nil)
		tc.want.CSP, tc.want.NoSniff = ui.CSP, "nosniff"
		if got.Status >= 400 {
			got.ContentType = "" // http.Error's text/plain
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tc.method, tc.path, diff)
		}
	}
}

// A browser revalidates (no-cache) and gets 304 while the file is the same.
func TestRevalidates(t *testing.T) {
	srv := serve(t)
	first, _, hdr := get(t, srv, http.MethodGet, "/ui/app.js", nil)
	etag := hdr.Get("ETag")
	if first.Status != 200 || etag == "" {
		t.Fatalf("GET /ui/app.js: %d, ETag %q", first.Status, etag)
	}
	again, body, _ := get(t, srv, http.MethodGet, "/ui/app.js", map[string]string{"If-None-Match": etag})
	if again.Status != http.StatusNotModified || len(body) != 0 {
		t.Errorf("GET with If-None-Match %s: %d with %d bytes, want 304 and none", etag, again.Status, len(body))
	}
	_, _, other := get(t, srv, http.MethodGet, "/ui/style.css", nil)
	if other.Get("ETag") == etag {
		t.Errorf("app.js and style.css share the ETag %s", etag)
	}
}

// CSP default-src 'self' blocks inline scripts, inline styles and event
// handler attributes: the page must have none, or it breaks in the
// browser. Data is put in the page as text only: no API that parses markup.
func TestNoInlineCodeAndNoMarkupFromData(t *testing.T) {
	forbidden := map[string]*regexp.Regexp{
		".html": regexp.MustCompile(`(?i)<script>|<script\s[^>]*>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|(?:href|src)="javascript:`),
		".js":   regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|\.style\.|setAttribute\(\s*['"]on|DOMParser|createContextualFragment`),
		".css":  regexp.MustCompile(`url\(\s*['"]?(?:https?:|//)|@import`),
	}
	for _, n := range staticFiles(t) {
		b, err := os.ReadFile("static/" + n)
		if err != nil {
			t.Fatal(err)
		}
		re := forbidden[path.Ext(n)]
		if re == nil {
			continue
		}
		for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(string(b), -1) {
			if !strings.Contains(tag, " src=") {
				t.Errorf("static/%s: %s has no src: CSP blocks inline scripts", n, tag)
			}
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := re.FindString(line); m != "" {
				t.Errorf("static/%s:%d: %q is not allowed here: %s", n, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

// Every file the page loads (link, script, img, import) is one it has, and
// it loads nothing from another origin.
func TestReferencesResolve(t *testing.T) {
	have := map[string]bool{}
	for _, n := range staticFiles(t) {
		have[n] = true
	}
	refs := regexp.MustCompile(`(?:href|src)="([^"#]+)"|from '([^']+)'`)
	for _, n := range staticFiles(t) {
		if ext := path.Ext(n); ext != ".html" && ext != ".js" {
			continue
		}
		b, err := os.ReadFile("static/" + n)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refs.FindAllStringSubmatch(string(b), -1) {
			ref := m[1] + m[2]
			if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") {
				t.Errorf("static/%s loads %q from outside the page", n, ref)
				continue
			}
			if !have[path.Clean(ref)] {
				t.Errorf("static/%s loads %q, which is not in static/", n, ref)
			}
		}
	}
}

func staticFiles(t *testing.T) []string {
	t.Helper()
	var names []string
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}
