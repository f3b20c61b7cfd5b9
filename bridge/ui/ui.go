// Package ui serves the web page under /ui/: plain HTML, CSS and a little
// JavaScript, embedded in the binary, that manage webhooks and read their
// deliveries through the admin API (/api/v1). docs/ui.md describes it.
//
// The files are static and public: they hold no data. The page asks the API
// for everything, with the admin token the user types in (kept in the tab's
// session storage). Every answer carries a Content-Security-Policy that
// allows only the page's own files, so nothing a service URI answered can
// run as script even if it were ever put into the page as markup.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the page is mounted. Mount the handler at Prefix (a
// router's PathPrefix) and at Prefix without its slash, which redirects.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every answer: scripts, styles,
// images and API calls only from this origin, nothing inline, no framing.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// types are the content types of the files the page is made of. A file
// with another extension is not served (its test fails).
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	name  string
	ctype string
	etag  string
	body  []byte
}

// Handler serves the page's files. Build it with New.
type Handler struct {
	files map[string]*file // by path under Prefix; "" is index.html
	// modTime is when the handler was made: files change only with the
	// binary, and ETags decide freshness anyway.
	modTime time.Time
}

// New returns the handler of the page's files.
func New() (*Handler, error) {
	h := &Handler{files: map[string]*file{}, modTime: time.Now()}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := types[path.Ext(p)]
		if !ok {
			return fmt.Errorf("ui: embedded file %s has no known content type", p)
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return fmt.Errorf("ui: read embedded %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "static/")
		h.files[name] = &file{name: name, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, body: body}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.files["index.html"] == nil {
		return nil, fmt.Errorf("ui: no index.html embedded")
	}
	h.files[""] = h.files["index.html"]
	return h, nil
}

// Files lists the names of the files served under Prefix ("" is the page
// itself), for tests and docs.
func (h *Handler) Files() []string {
	out := make([]string, 0, len(h.files))
	for name := range h.files {
		out = append(out, name)
	}
	return out
}

// ServeHTTP serves GET and HEAD of the files under Prefix; the path Prefix
// without its slash redirects to Prefix. Every answer, errors included,
// carries the security headers. Caches must revalidate (the ETag makes that
// cheap), so a new binary's page is used at once.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the page's files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	f := h.files[name]
	if !ok || f == nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	http.ServeContent(w, r, f.name, h.modTime, bytes.NewReader(f.body))
}
