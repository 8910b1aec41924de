package openapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	Paths      map[string]map[string]operation `json:"paths"`
	Security   []map[string][]string           `json:"security"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

// operation is one operation of a document, as far as the tests look at it.
type operation struct {
	OperationID string                `json:"operationId"`
	Security    []map[string][]string `json:"security"`
	Responses   map[string]any        `json:"responses"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
}

func parse(t *testing.T, raw []byte) document {
	t.Helper()
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// route is one REST route: a lower-case HTTP method and a path template.
type route struct {
	Method, Path string
}

// documents are both services' OpenAPI documents, with their REST routes (the API contract the
// README's walk-throughs use) and the gRPC services behind them. Who may call each route is the
// (shop.v1.access) option of its RPC (TestSecurityFollowsAccessOption), and the status it
// answers on success its (shop.v1.success) option (TestSuccessFollowsSuccessOption).
var documents = map[string]struct {
	doc      []byte
	routes   []route
	services []protoreflect.ServiceDescriptor
}{
	"customers": {
		doc: openapi.Customers,
		routes: []route{
			{"post", "/api/v1/users"},
			{"post", "/api/v1/auth/login"},
			{"post", "/api/v1/auth/logout"},
			{"get", "/api/v1/users"},
			{"get", "/api/v1/users/{user_id}"},
			{"patch", "/api/v1/users/{user_id}"},
			{"delete", "/api/v1/users/{user_id}"},
			{"post", "/api/v1/users/{user_id}/password"},
		},
		services: []protoreflect.ServiceDescriptor{
			customersv1.File_customers_v1_user_proto.Services().ByName("UserService"),
			customersv1.File_customers_v1_auth_proto.Services().ByName("AuthService"),
		},
	},
	"cart": {
		doc: openapi.Cart,
		routes: []route{
			{"get", "/api/v1/products"},
			{"get", "/api/v1/products/{product_id}"},
			{"post", "/api/v1/products"},
			{"patch", "/api/v1/products/{product_id}"},
			{"delete", "/api/v1/products/{product_id}"},
			{"get", "/api/v1/carts/{user_id}"},
			{"delete", "/api/v1/carts/{user_id}/items"},
			{"post", "/api/v1/carts/{user_id}/items"},
			{"patch", "/api/v1/carts/{user_id}/items/{product_id}"},
			{"delete", "/api/v1/carts/{user_id}/items/{product_id}"},
		},
		services: []protoreflect.ServiceDescriptor{
			cartv1.File_cart_v1_product_proto.Services().ByName("ProductService"),
			cartv1.File_cart_v1_cart_proto.Services().ByName("CartService"),
		},
	},
}

// rpcOperation is one operation of a document with the RPC it calls.
type rpcOperation struct {
	route
	operation
	rpc protoreflect.MethodDescriptor
}

// operations returns every operation of doc with the RPC among services that its operationId
// names (protoc-gen-openapiv3 names operations Service_Method); an operation that names none
// fails the test.
func operations(t *testing.T, doc document, services []protoreflect.ServiceDescriptor) []rpcOperation {
	t.Helper()
	rpcs := map[string]protoreflect.MethodDescriptor{}
	for _, sd := range services {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			rpcs[string(sd.Name())+"_"+string(md.Name())] = md
		}
	}
	var out []rpcOperation
	for path, ops := range doc.Paths {
		for method, op := range ops {
			md, ok := rpcs[op.OperationID]
			if !ok {
				t.Errorf("%s %s: operationId %q names no RPC", method, path, op.OperationID)
				continue
			}
			out = append(out, rpcOperation{route{method, path}, op, md})
		}
	}
	return out
}

func TestDocumentsMatchContract(t *testing.T) {
	for name, tc := range documents {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, tc.doc)
			bearer := doc.Components.SecuritySchemes["BearerAuth"]
			if bearer.Type != "http" || bearer.Scheme != "bearer" {
				t.Errorf("BearerAuth scheme = %+v, want http bearer (so Swagger UI adds the Bearer prefix)", bearer)
			}
			var got []route
			for path, ops := range doc.Paths {
				for method := range ops {
					got = append(got, route{method, path})
				}
			}
			less := func(a, b route) int {
				return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
			}
			slices.SortFunc(got, less)
			want := slices.Clone(tc.routes)
			slices.SortFunc(want, less)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("routes (-contract +document):\n%s", diff)
			}
		})
	}
}

// TestIdempotencyKeyFollowsIdempotentOption checks that exactly the operations whose RPC
// declares (shop.v1.idempotent) document the Idempotency-Key header and its 409 and 422.
func TestIdempotencyKeyFollowsIdempotentOption(t *testing.T) {
	idempotent := 0
	for name, tc := range documents {
		t.Run(name, func(t *testing.T) {
			for _, op := range operations(t, parse(t, tc.doc), tc.services) {
				want, _ := proto.GetExtension(op.rpc.Options(), shopv1.E_Idempotent).(bool)
				if want {
					idempotent++
				}
				header := false
				for _, p := range op.Parameters {
					header = header || (p.In == "header" && p.Name == "Idempotency-Key")
				}
				_, conflict := op.Responses["409"]
				_, reused := op.Responses["422"]
				if header != want || conflict != want || reused != want {
					t.Errorf("%s %s: Idempotency-Key %t, 409 %t, 422 %t; want all %t", op.Method, op.Path, header, conflict, reused, want)
				}
			}
		})
	}
	if idempotent != 2 {
		t.Errorf("%d idempotent operations, want 2 (AddItem, CreateProduct)", idempotent)
	}
}

// TestSuccessFollowsSuccessOption checks that each operation documents exactly one success
// status, the one its RPC's (shop.v1.success) option declares (the number of its value), or
// 200 when it declares none.
func TestSuccessFollowsSuccessOption(t *testing.T) {
	for name, tc := range documents {
		t.Run(name, func(t *testing.T) {
			not200 := 0
			for _, op := range operations(t, parse(t, tc.doc), tc.services) {
				var got []string
				for code := range op.Responses {
					if strings.HasPrefix(code, "2") {
						got = append(got, code)
					}
				}
				success, _ := proto.GetExtension(op.rpc.Options(), shopv1.E_Success).(shopv1.Success)
				want := http.StatusOK
				if success != shopv1.Success_SUCCESS_UNSPECIFIED {
					want = int(success)
					not200++
				}
				if diff := cmp.Diff([]string{strconv.Itoa(want)}, got); diff != "" {
					t.Errorf("%s %s (%v) success statuses (-want +got):\n%s", op.Method, op.Path, success, diff)
				}
			}
			// Both services have RPCs that create (201) and delete (204): none at all would
			// mean the option was not read.
			if not200 == 0 {
				t.Error("every operation answers 200")
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
	for name, tc := range documents {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, tc.doc)
			if diff := cmp.Diff(bearer, doc.Security); diff != "" {
				t.Errorf("document security (-want +got):\n%s", diff)
			}
			anonymous := 0
			for _, op := range operations(t, doc, tc.services) {
				access, _ := proto.GetExtension(op.rpc.Options(), shopv1.E_Access).(shopv1.Access)
				if access == shopv1.Access_ACCESS_UNSPECIFIED {
					access = shopv1.Access_ACCESS_REQUIRED
				}
				got := doc.Security
				if op.Security != nil {
					got = op.Security
				}
				if diff := cmp.Diff(want[access], got); diff != "" {
					t.Errorf("%s %s (%v) security (-want +got):\n%s", op.Method, op.Path, access, diff)
				}
				if access != shopv1.Access_ACCESS_REQUIRED {
					anonymous++
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

// TestConditionalRequestsFollowETagFields checks that the AIP-154 headers are documented where
// the messages carry an `etag`: If-Match and 412 where the request has one, and where the
// response is one resource with one (its own or its one message field's), the ETag header on
// the success response and, for a GET, If-None-Match and 304.
func TestConditionalRequestsFollowETagFields(t *testing.T) {
	hasETag := func(md protoreflect.MessageDescriptor) bool {
		fd := md.Fields().ByName("etag")
		return fd != nil && fd.Kind() == protoreflect.StringKind
	}
	carriesETag := func(md protoreflect.MessageDescriptor) bool {
		if hasETag(md) {
			return true
		}
		n := 0
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && hasETag(fd.Message()) {
				n++
			}
		}
		return n == 1
	}
	type conditional struct{ IfMatch, Failed, ETag, IfNoneMatch, NotModified bool }
	got := map[route]conditional{}
	for name, tc := range documents {
		t.Run(name, func(t *testing.T) {
			for _, op := range operations(t, parse(t, tc.doc), tc.services) {
				var c conditional
				for _, p := range op.Parameters {
					c.IfMatch = c.IfMatch || (p.In == "header" && p.Name == "If-Match")
					c.IfNoneMatch = c.IfNoneMatch || (p.In == "header" && p.Name == "If-None-Match")
				}
				_, c.Failed = op.Responses["412"]
				_, c.NotModified = op.Responses["304"]
				for code, r := range op.Responses {
					headers, _ := r.(map[string]any)["headers"].(map[string]any)
					_, etag := headers["ETag"]
					c.ETag = c.ETag || (strings.HasPrefix(code, "2") && etag)
				}
				got[op.route] = c
				precondition := hasETag(op.rpc.Input())
				resource := carriesETag(op.rpc.Output())
				get := resource && strings.EqualFold(op.Method, http.MethodGet)
				want := conditional{IfMatch: precondition, Failed: precondition, ETag: resource, IfNoneMatch: get, NotModified: get}
				if diff := cmp.Diff(want, c); diff != "" {
					t.Errorf("%s %s conditional headers (-want +got):\n%s", op.Method, op.Path, diff)
				}
			}
		})
	}
	// The README's walk-through: none of these would mean the fields were not read.
	for r, want := range map[route]conditional{
		{"patch", "/api/v1/users/{user_id}"}:                    {IfMatch: true, Failed: true, ETag: true},
		{"get", "/api/v1/products/{product_id}"}:                {ETag: true, IfNoneMatch: true, NotModified: true},
		{"patch", "/api/v1/carts/{user_id}/items/{product_id}"}: {IfMatch: true, Failed: true, ETag: true},
		{"get", "/api/v1/products"}:                             {},
	} {
		if diff := cmp.Diff(want, got[r]); diff != "" {
			t.Errorf("%s %s conditional headers (-want +got):\n%s", r.Method, r.Path, diff)
		}
	}
}
