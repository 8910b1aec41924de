package main

import (
	"net/http"
	"sync"
	"testing"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

// TestNoLostUpdates mixes concurrent adds, quantity changes and removals on one cart from many
// clients. Adds to one line commute, so its end quantity is known whatever the order; the line
// being set ends at the value every writer set; the line added and removed ends absent or
// present with a quantity a serial order allows; and the totals always match the lines.
func TestNoLostUpdates(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c, h := startShop(t, dialect)
		_, _, tok := c.shopper()
		added, set, churn := migrations.DemoProductIDs[0], migrations.DemoProductIDs[1], migrations.DemoProductIDs[2]
		h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": set, "quantity": 1})

		var wg sync.WaitGroup
		fail := make(chan string, 200)
		for range 30 {
			wg.Go(func() {
				if res := h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": added, "quantity": 2}); res.Code != http.StatusOK {
					fail <- "add: " + string(res.Raw)
				}
			})
		}
		for range 10 {
			wg.Go(func() {
				if res := h.do(http.MethodPatch, "/api/v1/carts/me/items/"+set, tok, map[string]any{"quantity": 7}); res.Code != http.StatusOK {
					fail <- "set: " + string(res.Raw)
				}
			})
		}
		for range 10 {
			wg.Go(func() {
				res := h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": churn, "quantity": 1})
				if res.Code != http.StatusOK {
					fail <- "churn add: " + string(res.Raw)
				}
				// Another client may have removed the line already: 404 is a legal answer.
				if res := h.do(http.MethodDelete, "/api/v1/carts/me/items/"+churn, tok, nil); res.Code != http.StatusOK && res.Code != http.StatusNotFound {
					fail <- "churn remove: " + string(res.Raw)
				}
			})
		}
		wg.Wait()
		close(fail)
		for f := range fail {
			t.Errorf("request failed: %s", f)
		}

		res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
		var got struct {
			Items []struct {
				ProductID string  `json:"product_id"`
				Quantity  float64 `json:"quantity"`
				LineTotal string  `json:"line_total"`
			} `json:"items"`
		}
		res.Decode(t, &got)
		lines := map[string]float64{}
		var sumQty float64
		var sumCents cart.Cents
		for _, it := range got.Items {
			lines[it.ProductID] = it.Quantity
			sumQty += it.Quantity
			total, err := cart.ParsePrice(it.LineTotal)
			if err != nil {
				t.Fatal(err)
			}
			sumCents += total
		}
		if lines[added] != 60 || lines[set] != 7 {
			t.Errorf("lines %v: want %s at 60 (30 adds of 2) and %s at 7", lines, added, set)
		}
		if q, ok := lines[churn]; ok && (q < 1 || q > 10) {
			t.Errorf("churned line at %v, outside what any serial order gives", q)
		}
		if res.JSON["total_quantity"] != sumQty || res.JSON["total_price"] != sumCents.String() {
			t.Errorf("totals %v / %v do not match the lines (%v / %s)", res.JSON["total_quantity"], res.JSON["total_price"], sumQty, sumCents)
		}
	})
}
