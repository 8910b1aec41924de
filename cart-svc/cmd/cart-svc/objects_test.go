package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// TestObjectLevelAccess tries every way to reach another user's cart: each method and path,
// with the victim's UUID in either case, an unknown UUID, and malformed IDs. None gets through,
// and the victim's cart is unchanged.
func TestObjectLevelAccess(t *testing.T) {
	c, h := startShop(t, "sqlite")
	victim := "00000000-0000-7000-8000-000000000004" // nonadmin4, who has a demo cart
	victimTok := c.login("nonadmin4@email.com", demoPassword)
	before := h.do(http.MethodGet, "/api/v1/carts/me", victimTok, nil)
	tok := c.login("nonadmin3@email.com", demoPassword)
	line := migrations.DemoProductIDs[5] // in the victim's cart

	forms := map[string]int{
		victim:                                 http.StatusForbidden,
		strings.ToUpper(victim):                http.StatusForbidden,
		"00000000-0000-7000-8000-0000000000ff": http.StatusForbidden,
		"not-a-uuid":                           http.StatusBadRequest,
		victim + "0":                           http.StatusBadRequest,
	}
	for id, want := range forms {
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, "/api/v1/carts/" + id, nil},
			{http.MethodDelete, "/api/v1/carts/" + id + "/items", nil},
			{http.MethodPost, "/api/v1/carts/" + id + "/items", map[string]any{"product_id": line, "quantity": 1}},
			{http.MethodPatch, "/api/v1/carts/" + id + "/items/" + line, map[string]any{"quantity": 5}},
			{http.MethodDelete, "/api/v1/carts/" + id + "/items/" + line, nil},
		} {
			if res := h.do(r.method, r.path, tok, r.body); res.Code != want {
				t.Errorf("%s %s = %d %s, want %d", r.method, r.path, res.Code, res.Raw, want)
			}
		}
	}
	after := h.do(http.MethodGet, "/api/v1/carts/me", victimTok, nil)
	if diff := cmp.Diff(before.JSON, after.JSON); diff != "" {
		t.Errorf("victim's cart changed (-before +after):\n%s", diff)
	}
}
