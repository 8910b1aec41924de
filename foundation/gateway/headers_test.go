package gateway_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/gateway"
)

// TestSecurityHeaders: every response of the REST port, success or error, API, probe or
// Swagger UI, tells browsers not to sniff its type, send a referrer or frame it; the API's
// answers are never cached, and carry a policy that lets them load and run nothing.
func TestSecurityHeaders(t *testing.T) {
	var ready error
	base := newGateway(t, &ready)
	tests := []struct {
		name, method, path, body string
		api                      bool
	}{
		{"success", http.MethodGet, "/api/v1/users/" + uuid, "", true},
		{"created", http.MethodPost, "/api/v1/users", `{"email":"a@example.com","password":"12345678"}`, true},
		{"client error", http.MethodGet, "/api/v1/users/not-a-uuid", "", true},
		{"not found", http.MethodGet, "/api/v1/nothing", "", true},
		{"body too large", http.MethodPost, "/api/v1/users", strings.Repeat("x", gateway.MaxBodyBytes+1), true},
		{"healthz", http.MethodGet, gateway.HealthzPath, "", true},
		{"readyz", http.MethodGet, gateway.ReadyzPath, "", true},
		{"openapi", http.MethodGet, gateway.SpecPath, "", true},
		{"swagger UI", http.MethodGet, gateway.DocsPath, "", false},
		{"swagger UI asset", http.MethodGet, gateway.DocsPath + "swagger-ui-bundle.js", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			h := do(t, tt.method, base+tt.path, body).header
			for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			csp := h.Get("Content-Security-Policy")
			if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-") {
				t.Errorf("Content-Security-Policy %q, want frame-ancestors 'none' and nothing unsafe", csp)
			}
			if tt.api {
				if got := h.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", got)
				}
				if !strings.HasPrefix(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
					t.Errorf("Content-Security-Policy %q, want default-src 'none' and no script source", csp)
				}
			}
		})
	}
}

// TestSwaggerUIPolicyAllowsOnlyItsOwnScripts: Swagger UI's policy allows exactly the inline
// scripts and styles of its page, by hash, and scripts from its own origin: an injected inline
// script, whose hash differs, does not run. (The Chromium test in cart-svc checks that the page
// still works under it.)
func TestSwaggerUIPolicyAllowsOnlyItsOwnScripts(t *testing.T) {
	var ready error
	res := do(t, http.MethodGet, newGateway(t, &ready)+gateway.DocsPath, nil)
	csp := res.header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	if directives["default-src"] != "'none'" || directives["connect-src"] != "'self'" {
		t.Errorf("policy %q, want default-src 'none' and connect-src 'self'", csp)
	}
	inline := regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)
	found := inline.FindAllStringSubmatch(string(res.body), -1)
	if len(found) == 0 {
		t.Fatal("no inline script or style in Swagger UI's page: the test reads the wrong page")
	}
	for _, m := range found {
		sum := sha256.Sum256([]byte(m[2]))
		hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(directives[m[1]+"-src"], hash) {
			t.Errorf("%s-src %q does not allow the page's inline %s %s", m[1], directives[m[1]+"-src"], m[1], hash)
		}
	}
	for _, kind := range []string{"script", "style"} {
		if n := strings.Count(directives[kind+"-src"], "'sha256-"); n != strings.Count(string(res.body), "<"+kind+">") {
			t.Errorf("%s-src allows %d hashes, want one per inline %s of the page", kind, n, kind)
		}
	}
}
