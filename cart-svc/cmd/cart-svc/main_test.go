package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/events/eventstest"
	"github.com/acme/shop/foundation/service/servicetest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// TestRun starts the whole service on each database next to a real customers, checks that
// both transports answer and that cancelling the context shuts it down cleanly.
func TestRun(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c := startCustomers(t, "sqlite", nil)
		s := servicetest.StartOn(t, spec, dialect, map[string]string{"CART_CUSTOMERS_ADDR": c.grpc})
		s.CheckServing(t, "cart.v1.ProductService", "cart.v1.CartService")
		if res := servicetest.Do(t, http.MethodGet, s.URL+"/api/v1/products", "", nil); res.Code != http.StatusOK {
			t.Errorf("GET /api/v1/products = %d, want 200", res.Code)
		}
		// Readiness is cart's own: with customers down, cart stays in its load balancer and the
		// catalog answers, while /readyz reports customers and authenticated calls are 503.
		tok := c.login("nonadmin3@email.com", demoPassword)
		c.stop()
		res := servicetest.Do(t, http.MethodGet, s.URL+"/readyz", "", nil)
		if deps, _ := res.JSON["dependencies"].(map[string]any); res.Code != http.StatusOK || deps["customers"] != "unavailable" {
			t.Errorf("readyz with customers down = %d %s, want 200 reporting customers unavailable", res.Code, res.Raw)
		}
		if res := servicetest.Do(t, http.MethodGet, s.URL+"/api/v1/products", "", nil); res.Code != http.StatusOK {
			t.Errorf("catalog with customers down = %d, want 200", res.Code)
		}
		if res := servicetest.Do(t, http.MethodGet, s.URL+"/api/v1/carts/me", servicetest.Bearer(tok), nil); res.Code != http.StatusServiceUnavailable {
			t.Errorf("cart with customers down = %d, want 503", res.Code)
		}
		if !strings.Contains(s.Logs.String(), "dependency unavailable") {
			t.Errorf("no log line says that customers became unavailable:\n%s", s.Logs.String())
		}
		s.CheckShutdown(t)
	})
}

func TestRunRejectsBadConfig(t *testing.T) {
	servicetest.CheckConfigRejected(t, spec, map[string]string{"CART_MAX_QUANTITY": "0", "CART_CUSTOMERS_TIMEOUT": "soon"}, "CART_MAX_QUANTITY", "CART_CUSTOMERS_TIMEOUT")
}

// TestProductionRefusesDemoCatalog: production serves a database without demo data, and
// refuses to start on one that holds the demo catalog, naming its rows.
func TestProductionRefusesDemoCatalog(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		prod := map[string]string{"CART_NATS_URL": eventstest.Start(t).URL}
		for k, v := range production {
			prod[k] = v
		}
		servicetest.CheckDemoRowsRefused(t, spec, dialect, prod, migrations.DemoProductIDs[0], migrations.DemoProductIDs[len(migrations.DemoProductIDs)-1])
	})
}

// production are the settings that production needs, bar the NATS server's.
var production = map[string]string{
	"CART_PAGE_TOKEN_SECRET": "a-page-token-secret-of-at-least-32-bytes", "CART_ALLOW_PLAINTEXT_GRPC": "true",
	"CART_ALLOW_PLAINTEXT_CUSTOMERS": "true", "CART_CUSTOMERS_ADDR": "127.0.0.1:1",
}

// TestProductionRequiresNATS: production refuses to serve without CART_NATS_URL, which would
// leave deleted users' carts in place, and migrates without it.
func TestProductionRequiresNATS(t *testing.T) {
	servicetest.CheckNATSRequired(t, spec, production)
}
