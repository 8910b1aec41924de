package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/protos/openapi"
)

// FuzzREST sends arbitrary bodies and query strings to every customers route as an admin. No
// input may cause a server error or a panic: bad input is a 4xx. The first argument picks the
// route by its index in servicetest.Routes' fixed order (2 is GET /api/v1/users).
func FuzzREST(f *testing.F) {
	rs := servicetest.Routes(f, openapi.Customers, map[string]string{"user_id": "me"})
	for _, seed := range []string{
		`{}`, `{"email":"a@b.co","password":"password1"}`, `{"email":1}`, `[]`, `null`, `{"email":"\u0000"}`,
		`{"first_name":"` + strings.Repeat("é", 200) + `"}`, `{"is_admin":"yes"}`, `{"a":{"b":{"c":{"d":[[[[]]]]}}}}`,
		"\xff\xfe", `{"page_size": 1e400}`, `{"new_password":"x","current_password":null}`, `{"email":"%_' OR 1=1 --@x.y"}`,
	} {
		for i := range rs {
			f.Add(uint8(i), []byte(seed), "search=%25_&page_size=99999999999")
		}
	}
	h := start(f, "sqlite", map[string]string{"LOG_LEVEL": "error"})
	admin := h.login("admin1@email.com", demoPassword)
	f.Fuzz(func(t *testing.T, route uint8, body []byte, query string) {
		r := rs[int(route)%len(rs)]
		// Do not log ourselves out or delete the admin: those would end the fuzzing session.
		if r.Path == "/api/v1/auth/logout" || (r.Method == http.MethodDelete && strings.HasSuffix(r.Path, "/me")) || strings.HasSuffix(r.Path, "/password") {
			return
		}
		servicetest.CheckNoServerError(t, h.rest, r, query, body, servicetest.Bearer(admin))
	})
}
