package main

import (
	"net/http"
	"testing"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// TestIdempotencyReplayAuthorized: an admin adds to another user's cart with an
// Idempotency-Key and is then demoted; the replay of that add, which answered the admin before,
// is now a 403, as the add itself would be.
func TestIdempotencyReplayAuthorized(t *testing.T) {
	c, h := startShop(t, "sqlite")
	_, shopper, shopperToken := c.shopper()
	admin1, admin2 := c.login("admin1@email.com", demoPassword), c.login("admin2@email.com", demoPassword)
	kettle := migrations.DemoProductIDs[0]
	path := "/api/v1/carts/" + shopper + "/items"
	add := map[string]any{"product_id": kettle, "quantity": 2}

	if res := h.withKey(http.MethodPost, path, admin1, "on-behalf", add); res.Code != http.StatusOK {
		t.Fatalf("the admin's add = %d %s", res.Code, res.Raw)
	}
	if res := h.withKey(http.MethodPost, path, admin1, "on-behalf", add); res.Code != http.StatusOK || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the admin's replay = %d %v %s, want the answer replayed", res.Code, res.Header, res.Raw)
	}
	const admin1ID = "00000000-0000-7000-8000-000000000001"
	if res := doJSON(t, http.MethodPatch, c.rest+"/api/v1/users/"+admin1ID, admin2, map[string]any{"is_admin": false}); res.Code != http.StatusOK {
		t.Fatalf("demoting admin1 = %d %s", res.Code, res.Raw)
	}
	res := h.withKey(http.MethodPost, path, admin1, "on-behalf", add)
	if res.Code != http.StatusForbidden || res.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the demoted admin's replay = %d %v %s, want 403, not the replayed answer", res.Code, res.Header, res.Raw)
	}
	if q := h.quantity(shopperToken, kettle); q != 2 {
		t.Errorf("the shopper's quantity %d, want 2", q)
	}
}
