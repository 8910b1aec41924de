package main

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/service/servicetest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

// TestConditionalProductsAndCarts: conditional updates of products and carts on both dialects.
// Over REST, ETag equals the body's etag, If-None-Match gives 304, a stale If-Match is 412 with
// ETAG_MISMATCH and changes nothing, the current one goes through; over gRPC (testConditionalGRPC)
// a stale etag in the request is ABORTED with ETAG_MISMATCH alike.
func TestConditionalProductsAndCarts(t *testing.T) {
	dbtest.EachDialect(t, testConditional)
}

func testConditional(t *testing.T, dialect string) {
	c, h := startShop(t, dialect)
	admin := c.login("admin1@email.com", demoPassword)
	_, _, shopper := c.shopper()
	do := func(method, path, token, ifMatch string, body any) servicetest.Response {
		t.Helper()
		header := http.Header{}
		if ifMatch != "" {
			header.Set("If-Match", ifMatch)
		}
		return servicetest.DoHeader(t, method, h.rest+path, servicetest.Bearer(token), header, body)
	}
	tagOf := func(r servicetest.Response) string {
		t.Helper()
		tag, _ := r.JSON["etag"].(string)
		if tag == "" || r.Header.Get("ETag") != `"`+tag+`"` {
			t.Fatalf("%d %s: ETag %q, want the body's etag quoted", r.Code, r.Raw, r.Header.Get("ETag"))
		}
		return r.Header.Get("ETag")
	}

	created := do(http.MethodPost, "/api/v1/products", admin, "", map[string]any{"name": "Gift Card", "description": "Any amount.", "price": "25"})
	id, _ := created.JSON["id"].(string)
	first := tagOf(created)
	if got := servicetest.DoHeader(t, http.MethodGet, h.rest+"/api/v1/products/"+id, "", http.Header{"If-None-Match": {first}}, nil); got.Code != http.StatusNotModified || len(got.Raw) != 0 {
		t.Errorf("GET product If-None-Match current = %d %q, want 304 and no body", got.Code, got.Raw)
	}
	second := tagOf(do(http.MethodPatch, "/api/v1/products/"+id, admin, first, map[string]any{"price": "30"}))
	if got := do(http.MethodPatch, "/api/v1/products/"+id, admin, first, map[string]any{"price": "1"}); got.Code != http.StatusPreconditionFailed || got.Reason() != grpcserver.ReasonETagMismatch {
		t.Errorf("PATCH product with a stale If-Match = %d %s, want 412 ETAG_MISMATCH", got.Code, got.Raw)
	}
	if got := do(http.MethodDelete, "/api/v1/products/"+id, admin, first, nil); got.Code != http.StatusPreconditionFailed {
		t.Errorf("DELETE product with a stale If-Match = %d, want 412", got.Code)
	}
	if now := do(http.MethodGet, "/api/v1/products/"+id, "", "", nil); now.JSON["price"] != "30.00" || now.Header.Get("ETag") != second {
		t.Errorf("after the refused changes: %s ETag %s, want price 30.00 and ETag %s", now.Raw, now.Header.Get("ETag"), second)
	}

	added := do(http.MethodPost, "/api/v1/carts/me/items", shopper, "", map[string]any{"product_id": id, "quantity": 2})
	cartTag := tagOf(do(http.MethodGet, "/api/v1/carts/me", shopper, "", nil))
	if added.Code != http.StatusCreated && added.Code != http.StatusOK {
		t.Fatalf("add = %d %s", added.Code, added.Raw)
	}
	// A change of the product's price changes what the cart shows, so its ETag.
	do(http.MethodPatch, "/api/v1/products/"+id, admin, "", map[string]any{"price": "31"})
	if got := do(http.MethodPatch, "/api/v1/carts/me/items/"+id, shopper, cartTag, map[string]any{"quantity": 5}); got.Code != http.StatusPreconditionFailed || got.Reason() != grpcserver.ReasonETagMismatch {
		t.Errorf("PATCH item with the cart's ETag from before a price change = %d %s, want 412", got.Code, got.Raw)
	}
	current := tagOf(do(http.MethodGet, "/api/v1/carts/me", shopper, "", nil))
	if got := do(http.MethodDelete, "/api/v1/carts/me/items", shopper, cartTag, nil); got.Code != http.StatusPreconditionFailed {
		t.Errorf("clear with a stale If-Match = %d, want 412", got.Code)
	}
	if got := do(http.MethodPatch, "/api/v1/carts/me/items/"+id, shopper, current, map[string]any{"quantity": 5}); got.Code != http.StatusOK {
		t.Errorf("PATCH item with the current ETag = %d %s, want 200", got.Code, got.Raw)
	}
	if now := do(http.MethodGet, "/api/v1/carts/me", shopper, "", nil); now.JSON["total_quantity"] != float64(5) {
		t.Errorf("cart after the changes: %s, want quantity 5", now.Raw)
	}

	t.Run("gRPC", func(t *testing.T) {
		_, _, other := c.shopper()
		testConditionalGRPC(t, h, admin, other)
	})
}

// testConditionalGRPC: a stale etag in UpdateProduct, DeleteProduct, UpdateItem, RemoveItem and
// ClearCart is ABORTED with ETAG_MISMATCH and changes nothing; the current one goes through.
// adminToken is an admin's, shopperToken a user's with an empty cart.
func testConditionalGRPC(t *testing.T, h *harness, adminToken, shopperToken string) {
	admin, shopper := grpctest.As(t, adminToken), grpctest.As(t, shopperToken)
	mismatch := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Aborted || grpctest.Reason(err) != grpcserver.ReasonETagMismatch {
			t.Errorf("%s with a stale etag: %v, want ABORTED with reason %s", what, err, grpcserver.ReasonETagMismatch)
		}
	}

	created, err := h.products.CreateProduct(admin, &cartv1.CreateProductRequest{Name: "Gift Box", Price: "10"})
	if err != nil {
		t.Fatal(err)
	}
	id, first := created.GetProduct().GetId(), created.GetProduct().GetEtag()
	updated, err := h.products.UpdateProduct(admin, &cartv1.UpdateProductRequest{ProductId: id, Price: proto.String("12"), Etag: first})
	if err != nil {
		t.Fatalf("UpdateProduct with the current etag: %v", err)
	}
	current := updated.GetProduct().GetEtag()
	_, err = h.products.UpdateProduct(admin, &cartv1.UpdateProductRequest{ProductId: id, Price: proto.String("1"), Etag: first})
	mismatch("UpdateProduct", err)
	_, err = h.products.DeleteProduct(admin, &cartv1.DeleteProductRequest{ProductId: id, Etag: first})
	mismatch("DeleteProduct", err)
	got, err := h.products.GetProduct(admin, &cartv1.GetProductRequest{ProductId: id})
	if err != nil || got.GetProduct().GetPrice() != "12.00" || got.GetProduct().GetEtag() != current {
		t.Fatalf("product after the refused changes = %v, %v; want price 12.00 and etag %s", got, err, current)
	}

	added, err := h.carts.AddItem(shopper, &cartv1.AddItemRequest{UserId: "me", ProductId: id, Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	firstCart := added.GetCart().GetEtag()
	changed, err := h.carts.UpdateItem(shopper, &cartv1.UpdateItemRequest{UserId: "me", ProductId: id, Quantity: 3, Etag: firstCart})
	if err != nil {
		t.Fatalf("UpdateItem with the current etag: %v", err)
	}
	currentCart := changed.GetCart().GetEtag()
	_, err = h.carts.UpdateItem(shopper, &cartv1.UpdateItemRequest{UserId: "me", ProductId: id, Quantity: 7, Etag: firstCart})
	mismatch("UpdateItem", err)
	_, err = h.carts.RemoveItem(shopper, &cartv1.RemoveItemRequest{UserId: "me", ProductId: id, Etag: firstCart})
	mismatch("RemoveItem", err)
	_, err = h.carts.ClearCart(shopper, &cartv1.ClearCartRequest{UserId: "me", Etag: firstCart})
	mismatch("ClearCart", err)
	cart, err := h.carts.GetCart(shopper, &cartv1.GetCartRequest{UserId: "me"})
	if err != nil || cart.GetCart().GetTotalQuantity() != 3 || cart.GetCart().GetEtag() != currentCart {
		t.Fatalf("cart after the refused changes = %v, %v; want quantity 3 and etag %s", cart, err, currentCart)
	}

	if _, err := h.carts.RemoveItem(shopper, &cartv1.RemoveItemRequest{UserId: "me", ProductId: id, Etag: currentCart}); err != nil {
		t.Errorf("RemoveItem with the current etag: %v", err)
	}
	if _, err := h.products.DeleteProduct(admin, &cartv1.DeleteProductRequest{ProductId: id, Etag: current}); err != nil {
		t.Errorf("DeleteProduct with the current etag: %v", err)
	}
}
