package main

import (
	"testing"

	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/protos/openapi"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// FuzzREST sends arbitrary bodies and query strings to every cart route as an admin. No input
// may cause a server error or a panic: bad input is a 4xx. The first argument picks the route
// by its index in servicetest.Routes' fixed order.
func FuzzREST(f *testing.F) {
	rs := servicetest.Routes(f, openapi.Cart, map[string]string{"user_id": "me", "product_id": migrations.DemoProductIDs[1]})
	for _, seed := range []string{
		`{}`, `{"product_id":"00000000-0000-7000-8000-000000000101","quantity":1}`, `{"quantity":2147483648}`,
		`{"quantity":-2147483649}`, `{"price":"1e9"}`, `{"price":1}`, `{"name":"\ud800"}`, `[]`, `null`,
		`{"a":{"b":{"c":{"d":[[[[]]]]}}}}`, "\xff", `{"quantity":1.5}`, `{"unit_price":"0.01"}`,
	} {
		for i := range rs {
			f.Add(uint8(i), []byte(seed), "search=%25_%27&page_size=-1")
		}
	}
	c := startCustomers(f, "sqlite", nil)
	h := start(f, "sqlite", c.grpc, map[string]string{"LOG_LEVEL": "error"})
	admin := c.login("admin2@email.com", demoPassword)
	f.Fuzz(func(t *testing.T, n uint8, body []byte, query string) {
		servicetest.CheckNoServerError(t, h.rest, rs[int(n)%len(rs)], query, body, servicetest.Bearer(admin))
	})
}
