package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/acme/shop/protos/openapi"
)

// restRoute is one REST operation of the OpenAPI document with its path parameters filled.
type restRoute struct{ method, path string }

// routes lists every REST operation of the customers document, with `me` for each user_id.
func routes(t testing.TB) []restRoute {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := jsonUnmarshal(openapi.Customers, &doc); err != nil {
		t.Fatal(err)
	}
	var out []restRoute
	for path, ops := range doc.Paths {
		for method := range ops {
			out = append(out, restRoute{strings.ToUpper(method), strings.ReplaceAll(path, "{user_id}", "me")})
		}
	}
	return out
}

// FuzzREST sends arbitrary bodies and query strings to every customers route as an admin. No
// input may cause a server error or a panic: bad input is a 4xx.
func FuzzREST(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"email":"a@b.co","password":"password1"}`, `{"email":1}`, `[]`, `null`, `{"email":"\u0000"}`,
		`{"first_name":"` + strings.Repeat("é", 200) + `"}`, `{"is_admin":"yes"}`, `{"a":{"b":{"c":{"d":[[[[]]]]}}}}`,
		"\xff\xfe", `{"page_size": 1e400}`, `{"new_password":"x","current_password":null}`, `{"email":"%_' OR 1=1 --@x.y"}`,
	} {
		for i := range 8 {
			f.Add(uint8(i), []byte(seed), "search=%25_&page_size=99999999999")
		}
	}
	h := start(f, "sqlite", map[string]string{"LOG_LEVEL": "error"})
	admin := h.login("admin1@email.com", demoPassword)
	rs := routes(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte, query string) {
		r := rs[int(route)%len(rs)]
		// Do not log ourselves out or delete the admin: those would end the fuzzing session.
		if r.path == "/api/v1/auth/logout" || (r.method == http.MethodDelete && strings.HasSuffix(r.path, "/me")) || strings.HasSuffix(r.path, "/password") {
			return
		}
		req, err := http.NewRequestWithContext(context.Background(), r.method, h.rest+r.path+"?"+query, bytes.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		_ = res.Body.Close()
		if res.StatusCode >= 500 {
			t.Errorf("%s %s?%q with body %q = %d", r.method, r.path, query, body, res.StatusCode)
		}
	})
}
