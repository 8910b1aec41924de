package openapi_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
	shopv1 "github.com/acme/shop/protos/gen/go/shop/v1"
	"github.com/acme/shop/protos/openapi"
)

type document struct {
	Paths map[string]map[string]struct {
		OperationID string                `json:"operationId"`
		Security    []map[string][]string `json:"security"`
		Responses   map[string]any        `json:"responses"`
	} `json:"paths"`
	Security   []map[string][]string `json:"security"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

func parse(t *testing.T, raw []byte) document {
	t.Helper()
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// operation is one REST route with its documented success status.
type operation struct {
	Method, Path string
	Success      string
}

// The REST routes of both services (the API contract the README's walk-throughs use), with
// their success statuses. Who may call each is the (shop.v1.access) option of its RPC:
// TestSecurityFollowsAccessOption.
var (
	customers = []operation{
		{"post", "/api/v1/users", "201"},
		{"post", "/api/v1/auth/login", "200"},
		{"post", "/api/v1/auth/logout", "204"},
		{"get", "/api/v1/users", "200"},
		{"get", "/api/v1/users/{user_id}", "200"},
		{"patch", "/api/v1/users/{user_id}", "200"},
		{"delete", "/api/v1/users/{user_id}", "204"},
		{"post", "/api/v1/users/{user_id}/password", "204"},
	}
	cart = []operation{
		{"get", "/api/v1/products", "200"},
		{"get", "/api/v1/products/{product_id}", "200"},
		{"post", "/api/v1/products", "201"},
		{"patch", "/api/v1/products/{product_id}", "200"},
		{"delete", "/api/v1/products/{product_id}", "204"},
		{"get", "/api/v1/carts/{user_id}", "200"},
		{"delete", "/api/v1/carts/{user_id}/items", "200"},
		{"post", "/api/v1/carts/{user_id}/items", "200"},
		{"patch", "/api/v1/carts/{user_id}/items/{product_id}", "200"},
		{"delete", "/api/v1/carts/{user_id}/items/{product_id}", "200"},
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
			doc := parse(t, tc.doc)
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
					got = append(got, operation{method, path, success[0]})
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

// TestSecurityFollowsAccessOption checks that each operation documents who may call it as its
// RPC's (shop.v1.access) option declares: anonymous for public, anonymous or a bearer token for
// optional, and the document's bearer requirement otherwise.
func TestSecurityFollowsAccessOption(t *testing.T) {
	bearer := []map[string][]string{{"BearerAuth": {}}}
	want := map[shopv1.Access][]map[string][]string{
		shopv1.Access_ACCESS_PUBLIC:   {{}},
		shopv1.Access_ACCESS_OPTIONAL: {{}, {"BearerAuth": {}}},
		shopv1.Access_ACCESS_REQUIRED: bearer,
	}
	for name, tc := range map[string]struct {
		doc      []byte
		services []protoreflect.ServiceDescriptor
	}{
		"customers": {openapi.Customers, []protoreflect.ServiceDescriptor{
			customersv1.File_customers_v1_user_proto.Services().ByName("UserService"),
			customersv1.File_customers_v1_auth_proto.Services().ByName("AuthService"),
		}},
		"cart": {openapi.Cart, []protoreflect.ServiceDescriptor{
			cartv1.File_cart_v1_product_proto.Services().ByName("ProductService"),
			cartv1.File_cart_v1_cart_proto.Services().ByName("CartService"),
		}},
	} {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, tc.doc)
			if diff := cmp.Diff(bearer, doc.Security); diff != "" {
				t.Errorf("document security (-want +got):\n%s", diff)
			}
			// Operations are named Service_Method by protoc-gen-openapiv3.
			rpcs := map[string]protoreflect.MethodDescriptor{}
			for _, sd := range tc.services {
				for i := range sd.Methods().Len() {
					md := sd.Methods().Get(i)
					rpcs[string(sd.Name())+"_"+string(md.Name())] = md
				}
			}
			anonymous := 0
			for path, ops := range doc.Paths {
				for method, op := range ops {
					md, ok := rpcs[op.OperationID]
					if !ok {
						t.Errorf("%s %s: operationId %q names no RPC", method, path, op.OperationID)
						continue
					}
					access, _ := proto.GetExtension(md.Options(), shopv1.E_Access).(shopv1.Access)
					if access == shopv1.Access_ACCESS_UNSPECIFIED {
						access = shopv1.Access_ACCESS_REQUIRED
					}
					got := doc.Security
					if op.Security != nil {
						got = op.Security
					}
					if diff := cmp.Diff(want[access], got); diff != "" {
						t.Errorf("%s %s (%v) security (-want +got):\n%s", method, path, access, diff)
					}
					if access != shopv1.Access_ACCESS_REQUIRED {
						anonymous++
					}
				}
			}
			// Both services have operations anyone may call (login, the catalog): none at all
			// would mean the option was not read.
			if anonymous == 0 {
				t.Error("no operation may be called without a token")
			}
		})
	}
}
