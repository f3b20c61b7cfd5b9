// Package e2e tests the web page (bridge/ui) in a real browser: Debian's
// headless Chromium, driven with chromedp, against a real regwebhook server,
// the real registry and real webhook receivers. It holds only tests.
//
// The tests need /usr/bin/chromium; scripts/test installs it. They save
// screenshots under $REGWEBHOOK_ARTIFACTS (default .artifacts/ui in the
// repository) and log their paths.
package e2e
