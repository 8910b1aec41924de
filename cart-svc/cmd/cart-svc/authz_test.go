package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/access"
	"github.com/acme/shop/foundation/database/dbtest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

type identity string

const (
	anonymous       identity = "anonymous"
	malformed       identity = "malformed header"
	garbage         identity = "garbage token"
	algNone         identity = "alg none token"
	otherKey        identity = "token signed with another key"
	altered         identity = "token with an altered payload"
	expired         identity = "expired token"
	revoked         identity = "logged-out token"
	deletedUser     identity = "token of a deleted user"
	passwordChanged identity = "token from before a password change"
	other           identity = "another user's token"
	owner           identity = "owner"
	admin           identity = "admin"
)

var identities = []identity{anonymous, malformed, garbage, algNone, otherKey, altered, expired, revoked, deletedUser, passwordChanged, other, owner, admin}

// invalid are the identities whose credentials are not valid: each gets what no token gets.
var invalid = []identity{garbage, malformed, algNone, otherKey, altered, expired, revoked, deletedUser, passwordChanged}

// fixture is the user whose cart a row acts on, a product to change or delete, and the
// authorization header value of every identity ("" for none).
type fixture struct {
	ownerID, product string
	headers          map[identity]string
}

func forge(t testing.TB, method jwt.SigningMethod, key any, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, jwt.RegisteredClaims{
		Issuer: "customers", Subject: sub, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour)), ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// staleTokens returns a token of a deleted user and one from before a password change.
func staleTokens(t *testing.T, c *customers) (deleted, beforeChange string) {
	t.Helper()
	email := uniqueEmail()
	c.register(email, "stalePass123")
	deleted = c.login(email, "stalePass123")
	if res := doJSON(t, http.MethodDelete, c.rest+"/api/v1/users/me", deleted, nil); res.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", res.Code)
	}
	email = uniqueEmail()
	c.register(email, "stalePass123")
	beforeChange = c.login(email, "stalePass123")
	res := doJSON(t, http.MethodPost, c.rest+"/api/v1/users/me/password", beforeChange, map[string]any{"current_password": "stalePass123", "new_password": "freshPass123"})
	if res.Code != http.StatusNoContent {
		t.Fatalf("password change: %d", res.Code)
	}
	return deleted, beforeChange
}

// inCart is the demo product every fixture's owner has one of.
var inCart = migrations.DemoProductIDs[3]

func newFixture(t *testing.T, c *customers, h *harness, shared map[identity]string) fixture {
	t.Helper()
	email := uniqueEmail()
	id := c.register(email, "ownerPass123")
	stale := c.login(email, "ownerPass123")
	if res := doJSON(t, http.MethodPost, c.rest+"/api/v1/auth/logout", stale, "{}"); res.Code != http.StatusNoContent {
		t.Fatalf("logout: %d", res.Code)
	}
	ownerTok := c.login(email, "ownerPass123")
	parts := strings.Split(ownerTok, ".")
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"customers","sub":"00000000-0000-7000-8000-000000000001","jti":"x","iat":1,"exp":4102444800}`))
	bearer := func(tok string) string { return "Bearer " + tok }
	f := fixture{ownerID: id, headers: map[identity]string{
		anonymous:       "",
		malformed:       "Token " + ownerTok,
		garbage:         bearer("garbage.token.value"),
		algNone:         bearer(forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, id, time.Now().Add(time.Hour))),
		otherKey:        bearer(forge(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123"), id, time.Now().Add(time.Hour))),
		altered:         bearer(parts[0] + "." + payload + "." + parts[2]),
		expired:         bearer(forge(t, jwt.SigningMethodHS256, []byte(testSecret), id, time.Now().Add(-time.Hour))),
		revoked:         bearer(stale),
		deletedUser:     bearer(shared[deletedUser]),
		passwordChanged: bearer(shared[passwordChanged]),
		other:           bearer(shared[other]),
		owner:           bearer(ownerTok),
		admin:           bearer(shared[admin]),
	}}
	if res := h.do(http.MethodPost, "/api/v1/carts/me/items", ownerTok, map[string]any{"product_id": inCart, "quantity": 1}); res.Code != http.StatusOK {
		t.Fatalf("fill owner's cart: %d %s", res.Code, res.Raw)
	}
	p := h.do(http.MethodPost, "/api/v1/products", shared[admin], map[string]any{"name": "Fixture", "price": "1.00"})
	f.product, _ = p.JSON["id"].(string)
	return f
}

type rpc struct {
	method   string
	call     func(ctx context.Context, h *harness, f fixture) error
	rest     func(f fixture) (method, path string, body any)
	ok       int  // REST status of success
	consumes bool // a success uses up the fixture
	want     map[identity]codes.Code
}

// expect builds a row's expectations: anonymous callers and every invalid credential get anon.
func expect(anon, oth, own, adm codes.Code) map[identity]codes.Code {
	m := map[identity]codes.Code{anonymous: anon, other: oth, owner: own, admin: adm}
	for _, id := range invalid {
		m[id] = anon
	}
	return m
}

var (
	public       = expect(codes.OK, codes.OK, codes.OK, codes.OK)
	adminOnly    = expect(codes.Unauthenticated, codes.PermissionDenied, codes.PermissionDenied, codes.OK)
	ownerOrAdmin = expect(codes.Unauthenticated, codes.PermissionDenied, codes.OK, codes.OK)
)

func rpcs() []rpc {
	return []rpc{
		{
			method: cartv1.ProductService_ListProducts_FullMethodName, ok: http.StatusOK, want: public,
			call: func(ctx context.Context, h *harness, _ fixture) error {
				_, err := h.products.ListProducts(ctx, &cartv1.ListProductsRequest{})
				return err
			},
			rest: func(fixture) (string, string, any) { return http.MethodGet, "/api/v1/products", nil },
		},
		{
			method: cartv1.ProductService_GetProduct_FullMethodName, ok: http.StatusOK, want: public,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.products.GetProduct(ctx, &cartv1.GetProductRequest{ProductId: f.product})
				return err
			},
			rest: func(f fixture) (string, string, any) { return http.MethodGet, "/api/v1/products/" + f.product, nil },
		},
		{
			method: cartv1.ProductService_CreateProduct_FullMethodName, ok: http.StatusCreated, want: adminOnly,
			call: func(ctx context.Context, h *harness, _ fixture) error {
				_, err := h.products.CreateProduct(ctx, &cartv1.CreateProductRequest{Name: "New", Price: "2.50"})
				return err
			},
			rest: func(fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/products", map[string]any{"name": "New", "price": "2.50"}
			},
		},
		{
			method: cartv1.ProductService_UpdateProduct_FullMethodName, ok: http.StatusOK, want: adminOnly,
			call: func(ctx context.Context, h *harness, f fixture) error {
				name := "Renamed"
				_, err := h.products.UpdateProduct(ctx, &cartv1.UpdateProductRequest{ProductId: f.product, Name: &name})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodPatch, "/api/v1/products/" + f.product, map[string]any{"name": "Renamed"}
			},
		},
		{
			method: cartv1.ProductService_DeleteProduct_FullMethodName, ok: http.StatusNoContent, want: adminOnly, consumes: true,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.products.DeleteProduct(ctx, &cartv1.DeleteProductRequest{ProductId: f.product})
				return err
			},
			rest: func(f fixture) (string, string, any) { return http.MethodDelete, "/api/v1/products/" + f.product, nil },
		},
		{
			method: cartv1.CartService_GetCart_FullMethodName, ok: http.StatusOK, want: ownerOrAdmin,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.carts.GetCart(ctx, &cartv1.GetCartRequest{UserId: f.ownerID})
				return err
			},
			rest: func(f fixture) (string, string, any) { return http.MethodGet, "/api/v1/carts/" + f.ownerID, nil },
		},
		{
			method: cartv1.CartService_ClearCart_FullMethodName, ok: http.StatusOK, want: ownerOrAdmin, consumes: true,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.carts.ClearCart(ctx, &cartv1.ClearCartRequest{UserId: f.ownerID})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodDelete, "/api/v1/carts/" + f.ownerID + "/items", nil
			},
		},
		{
			method: cartv1.CartService_AddItem_FullMethodName, ok: http.StatusOK, want: ownerOrAdmin,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: f.ownerID, ProductId: migrations.DemoProductIDs[0], Quantity: 1})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/carts/" + f.ownerID + "/items", map[string]any{"product_id": migrations.DemoProductIDs[0], "quantity": 1}
			},
		},
		{
			method: cartv1.CartService_UpdateItem_FullMethodName, ok: http.StatusOK, want: ownerOrAdmin,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.carts.UpdateItem(ctx, &cartv1.UpdateItemRequest{UserId: f.ownerID, ProductId: inCart, Quantity: 2})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodPatch, "/api/v1/carts/" + f.ownerID + "/items/" + inCart, map[string]any{"quantity": 2}
			},
		},
		{
			method: cartv1.CartService_RemoveItem_FullMethodName, ok: http.StatusOK, want: ownerOrAdmin, consumes: true,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.carts.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: f.ownerID, ProductId: inCart})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodDelete, "/api/v1/carts/" + f.ownerID + "/items/" + inCart, nil
			},
		},
	}
}

func allMethods() []string {
	var out []string
	for _, sd := range []grpc.ServiceDesc{cartv1.ProductService_ServiceDesc, cartv1.CartService_ServiceDesc} {
		for _, m := range sd.Methods {
			out = append(out, "/"+sd.ServiceName+"/"+m.MethodName)
		}
	}
	return out
}

// TestAuthorizationMatrix calls every cart RPC as every identity, over gRPC and REST, with
// tokens validated by a real customers service. A new RPC without a row fails the test.
func TestAuthorizationMatrix(t *testing.T) {
	rows := rpcs()
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.method] = true
		if len(r.want) != len(identities) {
			t.Errorf("%s expects codes for %d identities, want all %d", r.method, len(r.want), len(identities))
		}
		// The matrix restates API.md; the proto's access option is what the interceptor enforces.
		if declared, anon := access.Of(r.method), r.want[anonymous]; (declared == access.Required) != (anon == codes.Unauthenticated) {
			t.Errorf("%s: the matrix expects %v without a token, but the proto declares %v", r.method, anon, declared)
		}
	}
	for _, m := range allMethods() {
		if !covered[m] {
			t.Errorf("RPC %s has no row in the authorization matrix", m)
		}
	}
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c, h := startShop(t, dialect)
		deleted, beforeChange := staleTokens(t, c)
		shared := map[identity]string{
			other: c.login("nonadmin4@email.com", demoPassword), admin: c.login("admin1@email.com", demoPassword),
			deletedUser: deleted, passwordChanged: beforeChange,
		}
		base := newFixture(t, c, h, shared)
		for _, r := range rows {
			for _, id := range identities {
				want := r.want[id]
				fresh := r.consumes && want == codes.OK
				f := base
				if fresh {
					f = newFixture(t, c, h, shared)
				}
				t.Run(fmt.Sprintf("grpc/%s/%s", r.method, id), func(t *testing.T) {
					if got := status.Code(r.call(withHeader(f.headers[id]), h, f)); got != want {
						t.Errorf("got %v, want %v", got, want)
					}
				})
				if fresh {
					f = newFixture(t, c, h, shared)
				}
				t.Run(fmt.Sprintf("rest/%s/%s", r.method, id), func(t *testing.T) {
					method, path, body := r.rest(f)
					res := doRaw(t, method, h.rest+path, f.headers[id], body)
					wantHTTP := runtime.HTTPStatusFromCode(want)
					if want == codes.OK {
						wantHTTP = r.ok
					}
					if res.Code != wantHTTP {
						t.Errorf("%s %s = %d %s, want %d", method, path, res.Code, res.Raw, wantHTTP)
					}
				})
			}
		}
	})
}
