package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
)

// apiCSP is the Content-Security-Policy of every response but Swagger UI's page: JSON loads
// nothing, runs nothing and is framed by no one.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets, on every response of the REST port, the headers that keep a browser
// from misusing it: no content sniffing (a JSON body is never run as a script or page), no
// referrer, no framing (clickjacking), the Content-Security-Policy docsCSP for Swagger UI's
// page and apiCSP for everything else, and no caching of the API's answers (tokens and
// personal data must not stay in a shared or browser cache).
func securityHeaders(next http.Handler, docsCSP string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if strings.HasPrefix(r.URL.Path, DocsPath) && r.URL.Path != SpecPath {
			h.Set("Content-Security-Policy", docsCSP)
		} else {
			h.Set("Content-Security-Policy", apiCSP)
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// inline matches the inline scripts and style sheets of a page: their bodies are what a
// CSP hash source covers.
var inline = regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)

// docsPolicy returns the Content-Security-Policy of Swagger UI's page as ui serves it: its
// scripts and styles from the same origin, the inline ones it embeds allowed by their hashes
// (and no others, so an injected script does not run), its images from the same origin or
// data: URLs, its API calls to the same origin, and no framing.
func docsPolicy(ctx context.Context, ui http.Handler) (string, error) {
	rec := httptest.NewRecorder()
	ui.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, DocsPath, nil))
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("swagger UI page: status %d", rec.Code)
	}
	hashes := map[string][]string{}
	for _, m := range inline.FindAllStringSubmatch(rec.Body.String(), -1) {
		sum := sha256.Sum256([]byte(m[2]))
		hashes[m[1]] = append(hashes[m[1]], "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self' " + strings.Join(hashes["script"], " "),
		"style-src 'self' " + strings.Join(hashes["style"], " "),
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src 'self'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'self'",
	}, "; "), nil
}
