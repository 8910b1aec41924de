package servicetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Route is one REST operation of an OpenAPI document.
type Route struct{ Method, Path string }

// Routes lists the operations of an OpenAPI document in a fixed order, by path and then by
// method, so that a fuzz input that picks a route by its index (a committed corpus entry)
// picks the same one on every run. Each path parameter {name} is replaced by params[name].
func Routes(t testing.TB, openapi []byte, params map[string]string) []Route {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	var replace []string
	for name, value := range params {
		replace = append(replace, "{"+name+"}", value)
	}
	fill := strings.NewReplacer(replace...)
	var out []Route
	for path, item := range doc.Paths {
		for key := range item {
			// A path item holds its operations, one per method, and may hold shared
			// parameters, a summary and the like.
			method := strings.ToUpper(key)
			if slices.Contains([]string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace}, method) {
				out = append(out, Route{Method: method, Path: fill.Replace(path)})
			}
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Method, b.Method))
	})
	if len(out) == 0 {
		t.Fatal("the OpenAPI document has no operations")
	}
	return out
}

// CheckNoServerError sends base+r.Path with query and body, as a fuzz target does with
// whatever it was given, and fails the test when the service answers with a server error (5xx)
// or not at all. A request no client could send (a malformed URL) is not sent.
func CheckNoServerError(t testing.TB, base string, r Route, query string, body []byte, authorization string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), r.Method, base+r.Path+"?"+query, bytes.NewReader(body))
	if err != nil {
		return
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	_ = res.Body.Close()
	if res.StatusCode >= 500 {
		t.Errorf("%s %s?%q with body %q = %d", r.Method, r.Path, query, body, res.StatusCode)
	}
}
