package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

// shopPage serves, on an origin of its own, a page that calls (*target)() with fetch and a
// bearer token once loaded, and leaves in window.result the status and the X-Request-Id the
// script could read, or the error. target is read when the page is requested, so that the
// page's origin can be allowed before the API it calls starts.
func shopPage(t *testing.T, target *string, token *string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><title>shop</title><script>
window.result = "pending";
fetch(%q, {headers: {"Authorization": "Bearer %s", "X-Request-Id": "from-the-browser"}})
  .then(r => { window.result = r.status + " " + r.headers.get("X-Request-Id"); })
  .catch(e => { window.result = "blocked: " + e.name; });
</script>`, *target, *token)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCORSInBrowser has headless Chromium run a shop page from another origin that calls
// cart's API with a token: from the allowed origin the call works (after the browser's
// preflight, since Authorization is not a simple header) and the script reads the exposed
// X-Request-Id; from another origin the browser blocks it.
func TestCORSInBrowser(t *testing.T) {
	ctx := browser(t)
	var target, token string
	allowed, other := shopPage(t, &target, &token), shopPage(t, &target, &token)

	c := startCustomers(t, "sqlite", nil)
	_, _, token = c.shopper()
	h := start(t, "sqlite", c.grpc, map[string]string{"CART_CORS_ALLOWED_ORIGINS": allowed})
	target = h.rest + "/api/v1/carts/me"

	for url, want := range map[string]string{allowed: "200 from-the-browser", other: "blocked: TypeError"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.Poll[chromedp.Void](`window.result !== "pending"`)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.result`))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("page at %s: %q, want %q", url, got, want)
		}
	}
}
