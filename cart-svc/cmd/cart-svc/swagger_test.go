package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browser starts headless Chromium (Debian's chromium package) for the test. Without it the
// test skips locally and fails in CI.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is required in CI (apt-get install chromium)")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 2000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// operation is the Swagger UI block of one operation; Swagger UI names it after the tag (the
// gRPC service) and the operationId (Service_Method).
func operation(service, method string) string {
	return "#operations-" + service + "-" + service + "_" + method
}

type step = chromedp.Action[chromedp.Void]

// tryOut opens an operation, fills its fields (CSS selector inside the operation -> text),
// executes it and returns the response body Swagger UI shows.
func tryOut(ctx context.Context, op string, fill map[string]string) (string, error) {
	steps := []step{
		chromedp.WaitVisible(chromedp.CSS(op)),
		chromedp.Click(chromedp.CSS(op + " .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(op + " .try-out__btn")),
		chromedp.Click(chromedp.CSS(op + " .try-out__btn")),
	}
	for sel, text := range fill {
		field := chromedp.CSS(op + " " + sel)
		steps = append(steps,
			chromedp.WaitVisible(field),
			chromedp.Click(field),
			// Select what is there (an example body) and type over it, as a user would, so
			// that Swagger UI's React state sees the change.
			chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
			chromedp.KeyEvent(kb.Delete),
			chromedp.SendKeys(field, text),
		)
	}
	response := chromedp.CSS(op + " .live-responses-table .response-col_description pre")
	steps = append(steps, chromedp.Click(chromedp.CSS(op+" .execute")), chromedp.WaitVisible(response))
	if err := chromedp.Do(ctx, steps...); err != nil {
		return "", err
	}
	return chromedp.Run(ctx, chromedp.Text(response))
}

// authorize pastes token, alone, into the "Authorize" dialog.
func authorize(ctx context.Context, token string) error {
	return chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")),
		chromedp.WaitVisible(chromedp.CSS(".modal-ux .auth-container input")),
		chromedp.SendKeys(chromedp.CSS(".modal-ux .auth-container input"), token),
		chromedp.Click(chromedp.CSS(".modal-ux .auth-btn-wrapper .modal-btn.authorize")),
		chromedp.WaitVisible(chromedp.CSS(".modal-ux .auth-btn-wrapper .btn-done")),
		chromedp.Click(chromedp.CSS(".modal-ux .auth-btn-wrapper .btn-done")),
		chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")),
	)
}

// recordViolations makes every page the browser opens from now on record the Content Security
// Policy violations it meets (securitypolicyviolation events), and collects the browser's own
// reports of them from its log; violations returns those of the current page and the log's
// since its last call.
func recordViolations(ctx context.Context) (violations func() []string, err error) {
	var mu sync.Mutex
	var logged []string
	err = chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok && e.Entry != nil && strings.Contains(e.Entry.Text, "Content Security Policy") {
			mu.Lock()
			logged = append(logged, e.Entry.Text)
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		return nil, err
	}
	const record = `window.cspViolations = [];
document.addEventListener("securitypolicyviolation", e => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: record}); err != nil {
		return nil, err
	}
	return func() []string {
		onPage, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.cspViolations || []`))
		if err != nil {
			onPage = append(onPage, "reading the page's violations: "+err.Error())
		}
		mu.Lock()
		defer mu.Unlock()
		onPage = append(onPage, logged...)
		logged = nil
		return onPage
	}, nil
}

// TestSwaggerUI uses each service's Swagger UI in a real browser as a newcomer would: log in
// with "Try it out" at customers, paste the token into "Authorize", read one's own user; then
// the same token in cart's Swagger UI reads one's cart. Both pages work under their Content
// Security Policy, which they never violate.
func TestSwaggerUI(t *testing.T) {
	ctx := browser(t)
	c, h := startShop(t, "sqlite")
	violations, err := recordViolations(ctx)
	if err != nil {
		t.Fatalf("record CSP violations: %v", err)
	}
	checkNoViolations := func(ui string) {
		t.Helper()
		if v := violations(); len(v) > 0 {
			t.Errorf("%s's Swagger UI violates its Content Security Policy: %q", ui, v)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(c.rest+"/api/v1/docs/")); err != nil {
		t.Fatalf("open customers' Swagger UI: %v", err)
	}
	login, err := tryOut(ctx, operation("AuthService", "Login"), map[string]string{
		"textarea.body-param__text": `{"email":"nonadmin3@email.com","password":"testPass123"}`,
	})
	if err != nil {
		t.Fatalf("login through Swagger UI: %v", err)
	}
	var res struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(login), &res); err != nil || res.AccessToken == "" {
		t.Fatalf("login response in Swagger UI: %q (%v)", login, err)
	}
	if err := authorize(ctx, res.AccessToken); err != nil {
		t.Fatalf("authorize in customers' Swagger UI: %v", err)
	}
	me, err := tryOut(ctx, operation("UserService", "GetUser"), map[string]string{`input[placeholder="user_id"]`: "me"})
	if err != nil {
		t.Fatalf("GetUser through Swagger UI: %v", err)
	}
	if !strings.Contains(me, "nonadmin3@email.com") {
		t.Errorf("GetUser in Swagger UI shows %q, want the caller", me)
	}
	checkNoViolations("customers")

	if err := chromedp.Do(ctx, chromedp.Navigate(h.rest+"/api/v1/docs/"), chromedp.WaitVisible(chromedp.CSS(operation("CartService", "GetCart")))); err != nil {
		t.Fatalf("open cart's Swagger UI: %v", err)
	}
	if err := authorize(ctx, res.AccessToken); err != nil {
		t.Fatalf("authorize in cart's Swagger UI: %v", err)
	}
	cart, err := tryOut(ctx, operation("CartService", "GetCart"), map[string]string{`input[placeholder="user_id"]`: "me"})
	if err != nil {
		t.Fatalf("GetCart through Swagger UI: %v", err)
	}
	if !strings.Contains(cart, `"total_price"`) || !strings.Contains(cart, "00000000-0000-7000-8000-000000000003") {
		t.Errorf("GetCart in Swagger UI shows %q, want the caller's cart", cart)
	}
	checkNoViolations("cart")
}
