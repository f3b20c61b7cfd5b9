package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/sirupsen/logrus"

	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/server"
	"github.com/regwebhook/regwebhook/config"
)

// chromium is Debian's Chromium (apt-get install -y chromium).
const chromium = "/usr/bin/chromium"

// stepTimeout bounds one browser step or wait: deliveries and the page's
// refresh (every 3s) come well within it.
const stepTimeout = 30 * time.Second

// browser is one headless Chromium with one tab. Its methods fail the test
// on any error, saving a screenshot and the page's text first.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // uncaught exceptions, console errors, CSP violations
}

// startBrowser starts Chromium with a fresh profile, closed when the test
// ends. A machine without Chromium fails the test: the page is not tested
// unless a browser runs it.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing (%v): run scripts/test, which installs Debian's chromium, or apt-get install -y chromium", chromium, err)
	}
	// Registered before the browser's cancel, so removed after Chromium exits.
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// This machine's network is closed: without these Chromium keeps
		// trying to reach Google's services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser and lives as long as ctx: no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("listen to the page's errors: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the page's log: %v", err)
	}
	// Runs before the browser is closed (cleanups run last first).
	t.Cleanup(func() {
		for _, p := range b.takeProblems() {
			t.Errorf("the page reported: %s", p)
		}
	})
	return b
}

// record keeps what the page reports as wrong: an uncaught exception, a
// console.error, a script error or a Content-Security-Policy violation.
// Failed requests (the 401 that asks for the token, a 4xx a test causes)
// are the network's, and are not kept. It runs in chromedp's event loop.
func (b *browser) record(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		p = fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil && d.Exception.Description != "" {
			p += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			p = "console.error"
		}
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Source == cdplog.EntrySourceSecurity || (e.Source == cdplog.EntrySourceJavascript && e.Level == cdplog.EntryLevelError) {
			p = fmt.Sprintf("%s %s: %s", e.Source, e.Level, e.Text)
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// takeProblems returns what the page reported so far, and forgets it.
func (b *browser) takeProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// do runs steps, each within stepTimeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// waitFor waits until the JavaScript expression js is truthy in the page.
func (b *browser) waitFor(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout)))
	if err != nil {
		b.fail("wait for %s (%s): %v", what, js, err)
	}
}

// waitText waits until the text of the first element sel matches holds
// every one of want, and returns that text.
func (b *browser) waitText(sel string, want ...string) string {
	b.t.Helper()
	quoted, _ := json.Marshal(want)
	b.waitFor(fmt.Sprintf("%s to show %q", sel, want), fmt.Sprintf(
		`(() => { const el = document.querySelector(%s); return !!el && %s.every((w) => el.textContent.includes(w)); })()`,
		jsString(sel), quoted))
	return b.text(sel)
}

// text is the text content of the first element sel matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read the text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates js in the page and returns its value as T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.fail("evaluate %s: %v", js, err)
	}
	return v
}

// click clicks the element sel, as a user's mouse would.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// typeInto types text into the input sel, after what it holds.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// replaceText empties the input sel and types text into it. (chromedp.Clear
// empties only the value attribute, not what was typed, and SetValue
// refuses "".)
func (b *browser) replaceText(sel, text string) {
	b.t.Helper()
	eval[chromedp.Void](b, `document.querySelector(`+jsString(sel)+`).value = ''`)
	b.typeInto(sel, text)
}

// screenshot saves the whole page as name.png under the artifacts folder
// and logs its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifacts(b.t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// fail ends the test, with a screenshot and the page's text to say why.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	msg := fmt.Sprintf(format, args...)
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
		msg += "\npage:\n" + text
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		p := filepath.Join(artifacts(b.t), "failed-"+strings.ReplaceAll(b.t.Name(), "/", "-")+".png")
		if os.WriteFile(p, png, 0o644) == nil {
			msg += "\nscreenshot: " + p
		}
	}
	b.t.Fatal(msg)
}

// artifacts is $REGWEBHOOK_ARTIFACTS, or .artifacts/ui in the repository.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REGWEBHOOK_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatalf("no go.mod above %s: set REGWEBHOOK_ARTIFACTS", wd)
			}
			root = parent
		}
		dir = filepath.Join(root, ".artifacts", "ui")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make artifacts folder: %v", err)
	}
	return dir
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// startServer runs regwebhook on a free loopback port with an embedded
// store in a temporary folder, until the test ends.
func startServer(t *testing.T, cfg *config.Config) *server.Server {
	t.Helper()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.ShutdownGrace = 2 * time.Second
	cfg.Store.Embedded.Path = t.TempDir()
	for _, w := range cfg.Webhooks {
		w.Defaults()
		w.Source = rule.FromConfig
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
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
	return srv
}

// apiClient calls the admin API as the CLI would, to check what the page did.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// call sends body (nil: none) and decodes the answer into out (nil: drop
// it); it fails the test unless the status is want.
func (c apiClient) call(method, path string, body, out any, want int) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}
