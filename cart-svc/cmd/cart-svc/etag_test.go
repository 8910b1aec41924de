package main

import (
	"net/http"
	"testing"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/serve/servetest"
)

// reason returns the ErrorInfo reason of a REST error body, or "".
func reason(r servetest.Response) string {
	details, _ := r.JSON["details"].([]any)
	for _, d := range details {
		if m, ok := d.(map[string]any); ok && m["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
			s, _ := m["reason"].(string)
			return s
		}
	}
	return ""
}

// Conditional updates of products and carts over REST: ETag equals the body's etag, If-None-Match
// gives 304, a stale If-Match is 412 with ETAG_MISMATCH and changes nothing, the current one
// goes through.
func TestConditionalProductsAndCarts(t *testing.T) {
	c, h := startShop(t, "sqlite")
	admin := c.login("admin1@email.com", demoPassword)
	_, _, shopper := c.shopper()
	do := func(method, path, token, ifMatch string, body any) servetest.Response {
		t.Helper()
		header := http.Header{}
		if ifMatch != "" {
			header.Set("If-Match", ifMatch)
		}
		return servetest.DoHeader(t, method, h.rest+path, servetest.Bearer(token), header, body)
	}
	tagOf := func(r servetest.Response) string {
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
	if got := servetest.DoHeader(t, http.MethodGet, h.rest+"/api/v1/products/"+id, "", http.Header{"If-None-Match": {first}}, nil); got.Code != http.StatusNotModified || len(got.Raw) != 0 {
		t.Errorf("GET product If-None-Match current = %d %q, want 304 and no body", got.Code, got.Raw)
	}
	second := tagOf(do(http.MethodPatch, "/api/v1/products/"+id, admin, first, map[string]any{"price": "30"}))
	if got := do(http.MethodPatch, "/api/v1/products/"+id, admin, first, map[string]any{"price": "1"}); got.Code != http.StatusPreconditionFailed || reason(got) != grpcserver.ReasonETagMismatch {
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
	if got := do(http.MethodPatch, "/api/v1/carts/me/items/"+id, shopper, cartTag, map[string]any{"quantity": 5}); got.Code != http.StatusPreconditionFailed || reason(got) != grpcserver.ReasonETagMismatch {
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
}
