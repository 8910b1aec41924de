package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"google.golang.org/grpc/codes"
)

// Headers a browser on another origin may send, and read, in calls to the API.
var (
	corsAllowedHeaders = []string{"Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "X-Request-Id"}
	corsExposedHeaders = []string{"ETag", "X-Request-Id", "Retry-After", "Idempotent-Replayed"}
)

// routes are the API's path templates and the methods each answers, read from the service's
// OpenAPI document (generated from the same annotations as the gateway's routes): they give
// OPTIONS its Allow header and a wrong method its 405.
type routes []route405

type route405 struct {
	re      *regexp.Regexp
	methods []string
}

// parseRoutes reads the paths of an OpenAPI document.
func parseRoutes(openapi []byte) (routes, error) {
	if len(openapi) == 0 {
		return nil, nil
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		return nil, fmt.Errorf("OpenAPI document: %w", err)
	}
	var out routes
	for path, ops := range doc.Paths {
		var methods []string
		for m := range ops {
			switch m := strings.ToUpper(m); m {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				methods = append(methods, m)
			}
		}
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		slices.Sort(methods)
		// "/api/v1/carts/{user_id}/items/{product_id}": each {…} is one path segment.
		pattern := regexp.QuoteMeta(path)
		pattern = regexp.MustCompile(`\\\{[^}]*\\\}`).ReplaceAllString(pattern, `[^/]+`)
		out = append(out, route405{re: regexp.MustCompile("^" + pattern + "$"), methods: methods})
	}
	return out, nil
}

// allow returns the methods path answers, OPTIONS included, or nil for a path the API does not
// have.
func (rs routes) allow(path string) []string {
	var methods []string
	for _, r := range rs {
		if r.re.MatchString(path) {
			methods = append(methods, r.methods...)
		}
	}
	if methods == nil {
		return nil
	}
	methods = append(methods, http.MethodOptions)
	slices.Sort(methods)
	return slices.Compact(methods)
}

// routingError answers a known path called with a method it does not have with 405 and its
// Allow header (grpc-gateway's default says 501); other routing errors keep the default.
func (rs routes) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusMethodNotAllowed {
		if methods := rs.allow(r.URL.Path); methods != nil {
			w.Header().Set("Allow", strings.Join(methods, ", "))
		}
		writeError(w, http.StatusMethodNotAllowed, int(codes.Unimplemented), "method not allowed")
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}

// withOptions answers OPTIONS on an API path as HTTP says (RFC 9110, 9.3.7): 204 with the
// methods it allows in Allow. Browsers' CORS preflights never get here: the CORS handler in
// front answers them.
func withOptions(next http.Handler, rs routes) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			if methods := rs.allow(r.URL.Path); methods != nil {
				w.Header().Set("Allow", strings.Join(methods, ", "))
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// headAsGET answers HEAD as GET without the body (RFC 9110, 9.3.2), as the Allow header of
// every GET route says and as net/http's own GET routes do: the gateway routes the request as
// a GET, and net/http drops the body written for a HEAD request, keeping the status and the
// headers (the Content-Length of a body written at once included).
func headAsGET(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}

// withCORS lets browsers on origins call the API: preflights for its methods and the headers
// above, those headers exposed to scripts, no credentials (tokens travel in Authorization, not
// cookies). No origins, no CORS headers at all.
func withCORS(next http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return cors.New(cors.Options{
		AllowedOrigins:       origins,
		AllowedMethods:       []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders:       corsAllowedHeaders,
		ExposedHeaders:       corsExposedHeaders,
		AllowCredentials:     false,
		MaxAge:               600,
		OptionsSuccessStatus: http.StatusNoContent,
	}).Handler(next)
}
