package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/acme/shop/protos/openapi"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// FuzzREST sends arbitrary bodies and query strings to every cart route as an admin. No input
// may cause a server error or a panic: bad input is a 4xx.
func FuzzREST(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"product_id":"00000000-0000-7000-8000-000000000101","quantity":1}`, `{"quantity":2147483648}`,
		`{"quantity":-2147483649}`, `{"price":"1e9"}`, `{"price":1}`, `{"name":"\ud800"}`, `[]`, `null`,
		`{"a":{"b":{"c":{"d":[[[[]]]]}}}}`, "\xff", `{"quantity":1.5}`, `{"unit_price":"0.01"}`,
	} {
		for i := range 10 {
			f.Add(uint8(i), []byte(seed), "search=%25_%27&page_size=-1")
		}
	}
	c := startCustomers(f, "sqlite", nil)
	h := start(f, "sqlite", c.grpc, map[string]string{"LOG_LEVEL": "error"})
	admin := c.login("admin2@email.com", demoPassword)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Cart, &doc); err != nil {
		f.Fatal(err)
	}
	type route struct{ method, path string }
	var rs []route
	for path, ops := range doc.Paths {
		for method := range ops {
			p := strings.NewReplacer("{user_id}", "me", "{product_id}", migrations.DemoProductIDs[1]).Replace(path)
			rs = append(rs, route{strings.ToUpper(method), p})
		}
	}
	f.Fuzz(func(t *testing.T, n uint8, body []byte, query string) {
		r := rs[int(n)%len(rs)]
		req, err := http.NewRequestWithContext(context.Background(), r.method, h.rest+r.path+"?"+query, bytes.NewReader(body))
		if err != nil {
			return
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
