package main

import (
	"net/http"
	"testing"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"
)

// TestRun starts the whole service on each database next to a real customers, checks that
// both transports answer and that cancelling the context shuts it down cleanly.
func TestRun(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c := startCustomers(t, "sqlite", nil)
		s := servetest.StartOn(t, spec, dialect, map[string]string{"CART_CUSTOMERS_ADDR": c.grpc})
		s.CheckServing(t, "cart.v1.ProductService", "cart.v1.CartService")
		if res := servetest.Do(t, http.MethodGet, s.URL+"/api/v1/products", "", nil); res.Code != http.StatusOK {
			t.Errorf("GET /api/v1/products = %d, want 200", res.Code)
		}
		// Readiness follows customers.
		c.stop()
		if res := servetest.Do(t, http.MethodGet, s.URL+"/readyz", "", nil); res.Code != http.StatusServiceUnavailable {
			t.Errorf("readyz with customers down = %d, want 503", res.Code)
		}
		s.CheckShutdown(t)
	})
}

func TestRunRejectsBadConfig(t *testing.T) {
	servetest.CheckConfigRejected(t, spec, map[string]string{"CART_MAX_QUANTITY": "0", "CART_CUSTOMERS_TIMEOUT": "soon"}, "CART_MAX_QUANTITY", "CART_CUSTOMERS_TIMEOUT")
}
