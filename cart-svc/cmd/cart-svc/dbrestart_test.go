package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/service/servicetest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// TestDatabaseRestart stops cart's PostgreSQL under it: catalog and cart calls get 503 (not
// 500, not a hang) and /readyz says not ready; when the database is back cart recovers without a
// restart, and the lines it acknowledged are all there.
func TestDatabaseRestart(t *testing.T) {
	cluster := dbtest.NewCluster(t)
	c := startCustomers(t, "sqlite", nil)
	h := start(t, "postgres", c.grpc, map[string]string{"CART_DATABASE_URL": cluster.DSN()})
	_, _, tok := c.shopper()
	p := migrations.DemoProductIDs[6]
	if res := h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": p, "quantity": 3}); res.Code != http.StatusOK {
		t.Fatalf("add = %d", res.Code)
	}

	cluster.Stop()
	for name, call := range map[string]func() servicetest.Response{
		"readyz":   func() servicetest.Response { return h.do(http.MethodGet, "/readyz", "", nil) },
		"products": func() servicetest.Response { return h.do(http.MethodGet, "/api/v1/products", "", nil) },
		"cart":     func() servicetest.Response { return h.do(http.MethodGet, "/api/v1/carts/me", tok, nil) },
		"add": func() servicetest.Response {
			return h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": p, "quantity": 1})
		},
	} {
		began := time.Now()
		if res := call(); res.Code != http.StatusServiceUnavailable {
			t.Errorf("%s with the database down = %d %s, want 503", name, res.Code, res.Raw)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("%s took %v with the database down", name, took)
		}
	}

	cluster.Start()
	// Ready again without a restart.
	servicetest.WaitHealthy(t, h.rest+"/readyz", nil)
	res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
	if res.Code != http.StatusOK || res.JSON["total_quantity"] != float64(3) {
		t.Errorf("after the restart: %d %s; want the 3 acknowledged before it (and not the refused add)", res.Code, res.Raw)
	}
}
