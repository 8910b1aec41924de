package openapi_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/protos/openapi"
)

type document struct {
	Paths map[string]map[string]struct {
		Security  []map[string][]string `json:"security"`
		Responses map[string]any        `json:"responses"`
	} `json:"paths"`
	Security   []map[string][]string `json:"security"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

// operation is one REST route of API.md with its documented success status and whether it can
// be called without a token.
type operation struct {
	Method, Path string
	Success      string
	Public       bool
}

// The REST contract of ../shared/API.md, route by route.
var (
	customers = []operation{
		{"post", "/api/v1/users", "201", true},
		{"post", "/api/v1/auth/login", "200", true},
		{"post", "/api/v1/auth/logout", "204", false},
		{"get", "/api/v1/users", "200", false},
		{"get", "/api/v1/users/{user_id}", "200", false},
		{"patch", "/api/v1/users/{user_id}", "200", false},
		{"delete", "/api/v1/users/{user_id}", "204", false},
		{"post", "/api/v1/users/{user_id}/password", "204", false},
	}
	cart = []operation{
		{"get", "/api/v1/products", "200", true},
		{"get", "/api/v1/products/{product_id}", "200", true},
		{"post", "/api/v1/products", "201", false},
		{"patch", "/api/v1/products/{product_id}", "200", false},
		{"delete", "/api/v1/products/{product_id}", "204", false},
		{"get", "/api/v1/carts/{user_id}", "200", false},
		{"delete", "/api/v1/carts/{user_id}/items", "200", false},
		{"post", "/api/v1/carts/{user_id}/items", "200", false},
		{"patch", "/api/v1/carts/{user_id}/items/{product_id}", "200", false},
		{"delete", "/api/v1/carts/{user_id}/items/{product_id}", "200", false},
	}
)

func TestDocumentsMatchContract(t *testing.T) {
	for name, tc := range map[string]struct {
		doc  []byte
		want []operation
	}{
		"customers": {openapi.Customers, customers},
		"cart":      {openapi.Cart, cart},
	} {
		t.Run(name, func(t *testing.T) {
			var doc document
			if err := json.Unmarshal(tc.doc, &doc); err != nil {
				t.Fatal(err)
			}
			bearer := doc.Components.SecuritySchemes["BearerAuth"]
			if bearer.Type != "http" || bearer.Scheme != "bearer" {
				t.Errorf("BearerAuth scheme = %+v, want http bearer (so Swagger UI adds the Bearer prefix)", bearer)
			}
			var got []operation
			for path, ops := range doc.Paths {
				for method, op := range ops {
					var success []string
					for code := range op.Responses {
						if code != "default" {
							success = append(success, code)
						}
					}
					if len(success) != 1 {
						t.Errorf("%s %s documents success statuses %v, want exactly one", method, path, success)
						continue
					}
					security := doc.Security
					if op.Security != nil {
						security = op.Security
					}
					// Anonymous access is an empty requirement among the alternatives.
					public := slices.ContainsFunc(security, func(r map[string][]string) bool { return len(r) == 0 })
					got = append(got, operation{method, path, success[0], public})
				}
			}
			less := func(a, b operation) int {
				if a.Path != b.Path {
					if a.Path < b.Path {
						return -1
					}
					return 1
				}
				if a.Method < b.Method {
					return -1
				}
				if a.Method > b.Method {
					return 1
				}
				return 0
			}
			slices.SortFunc(got, less)
			want := slices.Clone(tc.want)
			slices.SortFunc(want, less)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("operations (-contract +document):\n%s", diff)
			}
		})
	}
}
