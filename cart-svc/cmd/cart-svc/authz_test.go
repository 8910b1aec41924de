package main

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/access/accesstest"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/service/servicetest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// fixture is the user whose cart a row acts on, a product to change or delete, and the
// authorization header value of every identity ("" for none).
type fixture struct {
	ownerID, product string
	headers          map[accesstest.Identity]string
}

// Header returns the identity's authorization header value.
func (f fixture) Header(id accesstest.Identity) string { return f.headers[id] }

// staleTokens returns a token of a deleted user and one from before a password change.
func staleTokens(t *testing.T, c *customers) (deleted, beforeChange string) {
	t.Helper()
	email := uniqueEmail()
	c.register(email, "stalePass123")
	deleted = c.login(email, "stalePass123")
	if res := doJSON(t, http.MethodDelete, c.rest+"/api/v1/users/me", deleted, map[string]any{"current_password": "stalePass123"}); res.Code != http.StatusNoContent {
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

// newFixture registers a fresh owner with one product in its cart, and makes a product; tokens
// are the tokens of the other identities.
func newFixture(t *testing.T, c *customers, h *harness, tokens accesstest.Tokens) fixture {
	t.Helper()
	email := uniqueEmail()
	id := c.register(email, "ownerPass123")
	tokens.LoggedOut = c.login(email, "ownerPass123")
	if res := doJSON(t, http.MethodPost, c.rest+"/api/v1/auth/logout", tokens.LoggedOut, "{}"); res.Code != http.StatusNoContent {
		t.Fatalf("logout: %d", res.Code)
	}
	tokens.Owner = c.login(email, "ownerPass123")
	f := fixture{ownerID: id, headers: accesstest.Headers(t, testSecret, id, tokens)}
	if res := h.do(http.MethodPost, "/api/v1/carts/me/items", tokens.Owner, map[string]any{"product_id": inCart, "quantity": 1}); res.Code != http.StatusOK {
		t.Fatalf("fill owner's cart: %d %s", res.Code, res.Raw)
	}
	p := h.do(http.MethodPost, "/api/v1/products", tokens.Admin, map[string]any{"name": "Fixture", "price": "1.00"})
	f.product, _ = p.JSON["id"].(string)
	return f
}

// productETag returns the current etag of the fixture's product.
func productETag(h *harness, f fixture) (string, error) {
	res, err := h.products.GetProduct(context.Background(), &cartv1.GetProductRequest{ProductId: f.product})
	return res.GetProduct().GetEtag(), err
}

// cartETag returns the current etag of the fixture owner's cart, read by the owner.
func cartETag(h *harness, f fixture) (string, error) {
	res, err := h.carts.GetCart(servicetest.WithAuthorization(f.Header(accesstest.Owner)), &cartv1.GetCartRequest{UserId: f.ownerID})
	return res.GetCart().GetEtag(), err
}

// row is one RPC of the cart authorization matrix.
type row = accesstest.Row[*harness, fixture]

// rpcs are the rows of every cart RPC: how to call it, and what each identity gets.
func rpcs() []row {
	return []row{
		{
			Method: cartv1.ProductService_ListProducts_FullMethodName, OK: http.StatusOK, Want: accesstest.Public,
			GRPC: func(ctx context.Context, h *harness, _ fixture, _ string) error {
				return grpctest.Err(h.products.ListProducts(ctx, &cartv1.ListProductsRequest{}))
			},
			REST: func(fixture) (string, string, any) { return http.MethodGet, "/api/v1/products", nil },
		},
		{
			Method: cartv1.ProductService_GetProduct_FullMethodName, OK: http.StatusOK, Want: accesstest.Public,
			ETag: productETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.products.GetProduct(ctx, &cartv1.GetProductRequest{ProductId: f.product}))
			},
			REST: func(f fixture) (string, string, any) { return http.MethodGet, "/api/v1/products/" + f.product, nil },
		},
		{
			Method: cartv1.ProductService_CreateProduct_FullMethodName, OK: http.StatusCreated, Want: accesstest.AdminOnly,
			GRPC: func(ctx context.Context, h *harness, _ fixture, _ string) error {
				return grpctest.Err(h.products.CreateProduct(ctx, &cartv1.CreateProductRequest{Name: "New", Price: "2.50"}))
			},
			REST: func(fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/products", map[string]any{"name": "New", "price": "2.50"}
			},
		},
		{
			Method: cartv1.ProductService_UpdateProduct_FullMethodName, OK: http.StatusOK, Want: accesstest.AdminOnly,
			ETag: productETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.products.UpdateProduct(ctx, &cartv1.UpdateProductRequest{ProductId: f.product, Name: proto.String("Renamed"), Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodPatch, "/api/v1/products/" + f.product, map[string]any{"name": "Renamed"}
			},
		},
		{
			Method: cartv1.ProductService_DeleteProduct_FullMethodName, OK: http.StatusNoContent, Want: accesstest.AdminOnly, Consumes: true,
			ETag: productETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.products.DeleteProduct(ctx, &cartv1.DeleteProductRequest{ProductId: f.product, Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) { return http.MethodDelete, "/api/v1/products/" + f.product, nil },
		},
		{
			Method: cartv1.CartService_GetCart_FullMethodName, OK: http.StatusOK, Want: accesstest.OwnerOrAdmin,
			ETag: cartETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.carts.GetCart(ctx, &cartv1.GetCartRequest{UserId: f.ownerID}))
			},
			REST: func(f fixture) (string, string, any) { return http.MethodGet, "/api/v1/carts/" + f.ownerID, nil },
		},
		{
			Method: cartv1.CartService_ClearCart_FullMethodName, OK: http.StatusOK, Want: accesstest.OwnerOrAdmin, Consumes: true,
			ETag: cartETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.carts.ClearCart(ctx, &cartv1.ClearCartRequest{UserId: f.ownerID, Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodDelete, "/api/v1/carts/" + f.ownerID + "/items", nil
			},
		},
		{
			Method: cartv1.CartService_AddItem_FullMethodName, OK: http.StatusOK, Want: accesstest.OwnerOrAdmin,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: f.ownerID, ProductId: migrations.DemoProductIDs[0], Quantity: 1}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/carts/" + f.ownerID + "/items", map[string]any{"product_id": migrations.DemoProductIDs[0], "quantity": 1}
			},
		},
		{
			Method: cartv1.CartService_UpdateItem_FullMethodName, OK: http.StatusOK, Want: accesstest.OwnerOrAdmin,
			ETag: cartETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.carts.UpdateItem(ctx, &cartv1.UpdateItemRequest{UserId: f.ownerID, ProductId: inCart, Quantity: 2, Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodPatch, "/api/v1/carts/" + f.ownerID + "/items/" + inCart, map[string]any{"quantity": 2}
			},
		},
		{
			Method: cartv1.CartService_RemoveItem_FullMethodName, OK: http.StatusOK, Want: accesstest.OwnerOrAdmin, Consumes: true,
			ETag: cartETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.carts.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: f.ownerID, ProductId: inCart, Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodDelete, "/api/v1/carts/" + f.ownerID + "/items/" + inCart, nil
			},
		},
	}
}

// TestAuthorizationMatrix calls every cart RPC as every identity, over gRPC and REST, with
// tokens validated by a real customers service. A new RPC without a row fails the test.
func TestAuthorizationMatrix(t *testing.T) {
	rows := rpcs()
	accesstest.Check(t, rows, cartv1.ProductService_ServiceDesc, cartv1.CartService_ServiceDesc)
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c, h := startShop(t, dialect)
		deleted, beforeChange := staleTokens(t, c)
		tokens := accesstest.Tokens{
			Other: c.login("nonadmin4@email.com", demoPassword), Admin: c.login("admin1@email.com", demoPassword),
			Deleted: deleted, BeforePasswordChange: beforeChange,
		}
		accesstest.Run(t, rows, h, h.rest, func() fixture { return newFixture(t, c, h, tokens) })
	})
}
