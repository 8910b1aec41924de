package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/events/eventstest"
	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/tlsconfig"
	"github.com/acme/shop/foundation/tlsconfig/devcerts"
	"github.com/acme/shop/foundation/tlsconfig/tlstest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

const nonAdmin3 = "00000000-0000-7000-8000-000000000003"

func uniqueEmail() string { return "shopper-" + uuid.NewString()[:13] + "@example.com" }

// TestShopping drives cart against a real customers service over REST: log in at customers,
// browse products, fill and change the cart, and see revocation, deletion and an outage of
// customers reach cart.
func TestShopping(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c := startCustomers(t, dialect, nil)
		h := start(t, dialect, c.grpc, nil)

		email, userID, tok := c.shopper()

		list := h.do(http.MethodGet, "/api/v1/products?page_size=3", "", nil)
		products, _ := list.JSON["products"].([]any)
		next, _ := list.JSON["next_page_token"].(string)
		if list.Code != http.StatusOK || len(products) != 3 || next == "" {
			t.Fatalf("first page = %d %s", list.Code, list.Raw)
		}
		if page2 := h.do(http.MethodGet, "/api/v1/products?page_size=3&page_token="+next, "", nil); page2.Code != http.StatusOK {
			t.Errorf("second page = %d %s", page2.Code, page2.Raw)
		}
		espresso, beans := migrations.DemoProductIDs[0], migrations.DemoProductIDs[4]

		empty := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
		if items, ok := empty.JSON["items"].([]any); empty.Code != http.StatusOK || empty.JSON["total_price"] != "0.00" || !ok || len(items) != 0 || empty.JSON["user_id"] != userID {
			t.Fatalf("new user's cart = %d %s", empty.Code, empty.Raw)
		}
		h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": beans, "quantity": 2})
		h.do(http.MethodPost, "/api/v1/carts/"+userID+"/items/", tok, map[string]any{"product_id": espresso, "quantity": 1})
		got := h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": beans, "quantity": 1})
		want := map[string]any{
			"user_id": userID, "total_quantity": float64(4), "total_price": "273.49", "currency_code": "USD",
			"items": []any{
				map[string]any{"product_id": beans, "name": "Single-Origin Beans", "unit_price": "24.50", "quantity": float64(3), "line_total": "73.50"},
				map[string]any{"product_id": espresso, "name": "Espresso Machine", "unit_price": "199.99", "quantity": float64(1), "line_total": "199.99"},
			},
		}
		// The etag is a hash, checked in etag_test.go.
		if tag, _ := got.JSON["etag"].(string); tag == "" {
			t.Errorf("cart after adds has no etag: %s", got.Raw)
		}
		delete(got.JSON, "etag")
		if diff := cmp.Diff(want, got.JSON); diff != "" {
			t.Errorf("cart after adds (-want +got):\n%s", diff)
		}
		changed := h.do(http.MethodPatch, "/api/v1/carts/me/items/"+espresso, tok, map[string]any{"quantity": 2})
		if changed.JSON["total_price"] != "473.48" {
			t.Errorf("after quantity change = %s", changed.Raw)
		}
		removed := h.do(http.MethodDelete, "/api/v1/carts/me/items/"+beans, tok, nil)
		if removed.Code != http.StatusOK || removed.JSON["total_quantity"] != float64(2) {
			t.Errorf("after remove = %d %s", removed.Code, removed.Raw)
		}
		if missing := h.do(http.MethodDelete, "/api/v1/carts/me/items/"+beans, tok, nil); missing.Code != http.StatusNotFound {
			t.Errorf("removing a product not in the cart = %d, want 404", missing.Code)
		}
		cleared := h.do(http.MethodDelete, "/api/v1/carts/me/items", tok, nil)
		if cleared.Code != http.StatusOK || cleared.JSON["total_price"] != "0.00" {
			t.Errorf("clear = %d %s", cleared.Code, cleared.Raw)
		}

		// customers restarts on the same database: the token still works, without restarting cart.
		c.stop()
		start := time.Now()
		down := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
		if down.Code != http.StatusServiceUnavailable {
			t.Errorf("cart with customers down = %d %s, want 503", down.Code, down.Raw)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("503 took %v, want within the 1s deadline (plus slack)", took)
		}
		if pub := h.do(http.MethodGet, "/api/v1/products", "", nil); pub.Code != http.StatusOK {
			t.Errorf("public catalog with customers down = %d, want 200", pub.Code)
		}
		c.start()
		poll.Until(t, func() error {
			if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != http.StatusOK {
				return fmt.Errorf("cart after customers came back: %d %s", res.Code, res.Raw)
			}
			return nil
		})

		// Logout at customers is a 401 at cart at once.
		if res := doJSON(t, http.MethodPost, c.rest+"/api/v1/auth/logout", tok, "{}"); res.Code != http.StatusNoContent {
			t.Fatalf("logout = %d", res.Code)
		}
		if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != http.StatusUnauthorized {
			t.Errorf("after logout = %d, want 401", res.Code)
		}
		// So is deleting the user.
		tok = c.login(email, "shopperPass1")
		if res := doJSON(t, http.MethodDelete, c.rest+"/api/v1/users/me", tok, map[string]any{"current_password": "shopperPass1"}); res.Code != http.StatusNoContent {
			t.Fatalf("delete user = %d", res.Code)
		}
		if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != http.StatusUnauthorized {
			t.Errorf("after user deletion = %d, want 401", res.Code)
		}
	})
}

// TestCatalogAdmin covers the admin's catalog changes and their effect on carts.
func TestCatalogAdmin(t *testing.T) {
	c, h := startShop(t, "sqlite")
	admin := c.login("admin1@email.com", demoPassword)
	shopper := c.login("nonadmin3@email.com", demoPassword)

	created := h.do(http.MethodPost, "/api/v1/products", admin, map[string]any{"name": "Gift Card", "description": "Any amount.", "price": "25"})
	id, _ := created.JSON["id"].(string)
	if created.Code != http.StatusCreated || created.JSON["price"] != "25.00" || created.JSON["currency_code"] != "USD" {
		t.Fatalf("create = %d %s", created.Code, created.Raw)
	}
	h.do(http.MethodPost, "/api/v1/carts/me/items", shopper, map[string]any{"product_id": id, "quantity": 2})
	patched := h.do(http.MethodPatch, "/api/v1/products/"+id, admin, map[string]any{"price": "30.10"})
	if patched.JSON["price"] != "30.10" || patched.JSON["name"] != "Gift Card" {
		t.Errorf("patch = %s", patched.Raw)
	}
	cart := h.do(http.MethodGet, "/api/v1/carts/"+nonAdmin3, admin, nil)
	if !strings.Contains(string(cart.Raw), `"line_total":"60.20"`) && !strings.Contains(string(cart.Raw), `"line_total": "60.20"`) {
		t.Errorf("admin's view of the cart does not show the new price: %s", cart.Raw)
	}
	if del := h.do(http.MethodDelete, "/api/v1/products/"+id, admin, nil); del.Code != http.StatusNoContent || len(del.Raw) != 0 {
		t.Fatalf("delete = %d %q", del.Code, del.Raw)
	}
	if strings.Contains(string(h.do(http.MethodGet, "/api/v1/carts/me", shopper, nil).Raw), id) {
		t.Error("deleted product is still in a cart")
	}
	if res := h.do(http.MethodGet, "/api/v1/products/"+id, "", nil); res.Code != http.StatusNotFound {
		t.Errorf("deleted product = %d, want 404", res.Code)
	}
	found := h.do(http.MethodGet, "/api/v1/products?search=MACHINE", "", nil)
	if ps, _ := found.JSON["products"].([]any); len(ps) != 1 {
		t.Errorf("search MACHINE found %d products, want 1: %s", len(ps), found.Raw)
	}
	none := h.do(http.MethodGet, "/api/v1/products?search=%25", "", nil)
	if ps, _ := none.JSON["products"].([]any); none.Code != http.StatusOK || len(ps) != 0 {
		t.Errorf("search %% matched as a wildcard: %d %s", none.Code, none.Raw)
	}
}

// TestValidation sends each rule of the contract a value that breaks it and checks for 400
// with a violation naming the field, and that the cart is exactly as it was.
func TestValidation(t *testing.T) {
	c, h := startShop(t, "sqlite")
	admin := c.login("admin2@email.com", demoPassword)
	shopper := c.login("nonadmin4@email.com", demoPassword)
	p := migrations.DemoProductIDs[2]
	before := h.do(http.MethodGet, "/api/v1/carts/me", shopper, nil)

	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, method, path, token string
		body                      any
		field                     string
	}{
		{"quantity zero", "POST", "/api/v1/carts/me/items", shopper, map[string]any{"product_id": p, "quantity": 0}, "quantity"},
		{"quantity over limit", "POST", "/api/v1/carts/me/items", shopper, map[string]any{"product_id": p, "quantity": 100}, "quantity"},
		{"sum over limit", "POST", "/api/v1/carts/me/items", shopper, map[string]any{"product_id": migrations.DemoProductIDs[5], "quantity": 99}, "quantity"},
		{"negative quantity", "PATCH", "/api/v1/carts/me/items/" + migrations.DemoProductIDs[5], shopper, map[string]any{"quantity": -1}, "quantity"},
		{"bad product id", "POST", "/api/v1/carts/me/items", shopper, map[string]any{"product_id": "nope", "quantity": 1}, "product_id"},
		{"bad user id", "GET", "/api/v1/carts/not-a-uuid", shopper, nil, "user_id"},
		{"price zero", "POST", "/api/v1/products", admin, map[string]any{"name": "X", "price": "0"}, "price"},
		{"price too high", "POST", "/api/v1/products", admin, map[string]any{"name": "X", "price": "1000000.01"}, "price"},
		{"price three decimals", "POST", "/api/v1/products", admin, map[string]any{"name": "X", "price": "1.234"}, "price"},
		{"price not a number", "POST", "/api/v1/products", admin, map[string]any{"name": "X", "price": "ten"}, "price"},
		{"name empty", "POST", "/api/v1/products", admin, map[string]any{"name": "", "price": "1"}, "name"},
		{"name too long", "POST", "/api/v1/products", admin, map[string]any{"name": long(201), "price": "1"}, "name"},
		{"description too long", "POST", "/api/v1/products", admin, map[string]any{"name": "X", "description": long(2001), "price": "1"}, "description"},
		{"patch price", "PATCH", "/api/v1/products/" + p, admin, map[string]any{"price": "-5"}, "price"},
		{"page token forged", "GET", "/api/v1/products?page_token=Zm9yZ2Vk", "", nil, "page_token"},
		{"page size negative", "GET", "/api/v1/products?page_size=-3", "", nil, "page_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(tt.method, tt.path, tt.token, tt.body)
			if res.Code != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", res.Code, res.Raw)
			}
			if diff := cmp.Diff([]string{tt.field}, res.FieldViolations()); diff != "" {
				t.Errorf("field violations (-want +got):\n%s\n%s", diff, res.Raw)
			}
		})
	}
	if unknown := h.do(http.MethodPost, "/api/v1/carts/me/items", shopper, map[string]any{"product_id": uuid.NewString(), "quantity": 1}); unknown.Code != http.StatusNotFound {
		t.Errorf("unknown product = %d, want 404", unknown.Code)
	}
	if notIn := h.do(http.MethodPatch, "/api/v1/carts/me/items/"+migrations.DemoProductIDs[9], shopper, map[string]any{"quantity": 1}); notIn.Code != http.StatusNotFound {
		t.Errorf("changing a product not in the cart = %d, want 404", notIn.Code)
	}
	if after := h.do(http.MethodGet, "/api/v1/carts/me", shopper, nil); !cmp.Equal(before.JSON, after.JSON) {
		t.Errorf("rejected requests changed the cart:\nbefore %s\nafter  %s", before.Raw, after.Raw)
	}
	// Prices in a cart line cannot be set by the caller.
	if res := h.do(http.MethodPost, "/api/v1/carts/me/items", shopper, map[string]any{"product_id": p, "quantity": 1, "unit_price": "0.01"}); res.Code != http.StatusBadRequest {
		t.Errorf("add with a unit_price = %d, want 400", res.Code)
	}
}

// TestConcurrentAddsOverREST sends 50 parallel adds of 1 through the whole stack: the line
// ends at exactly 50 with no server error, on both databases.
func TestConcurrentAddsOverREST(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c, h := startShop(t, dialect)
		_, _, tok := c.shopper()
		p := migrations.DemoProductIDs[7]
		var wg sync.WaitGroup
		codes := make(chan int, 50)
		for range 50 {
			wg.Go(func() {
				codes <- h.do(http.MethodPost, "/api/v1/carts/me/items", tok, map[string]any{"product_id": p, "quantity": 1}).Code
			})
		}
		wg.Wait()
		close(codes)
		for code := range codes {
			if code != http.StatusOK {
				t.Errorf("an add answered %d", code)
			}
		}
		res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
		var cart struct {
			Items []struct {
				Quantity int `json:"quantity"`
			} `json:"items"`
		}
		res.Decode(t, &cart)
		if len(cart.Items) != 1 || cart.Items[0].Quantity != 50 {
			t.Errorf("after 50 concurrent adds: %s", res.Raw)
		}
	})
}

// TestMutualTLS runs customers with mutual TLS pinned to cart's identity: cart with its client
// certificate works; cart without one, with one from another CA, or with a certificate of the
// same CA for another name, cannot validate tokens (503).
func TestMutualTLS(t *testing.T) {
	f := tlstest.Write(t)
	c := startCustomers(t, "sqlite", map[string]string{
		"CUSTOMERS_GRPC_TLS_CERT": f.ServerCert, "CUSTOMERS_GRPC_TLS_KEY": f.ServerKey, "CUSTOMERS_GRPC_TLS_CLIENT_CA": f.CA,
		"CUSTOMERS_GRPC_TLS_CLIENT_NAMES": "cart",
	})
	tok := c.login("nonadmin3@email.com", demoPassword) // over REST: customers' gateway dials its own TLS port
	for _, tt := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"client certificate", map[string]string{"CART_CUSTOMERS_TLS_CA": f.CA, "CART_CUSTOMERS_TLS_CERT": f.ClientCert, "CART_CUSTOMERS_TLS_KEY": f.ClientKey, "CART_CUSTOMERS_TLS_SERVER_NAME": "localhost"}, http.StatusOK},
		{"no client certificate", map[string]string{"CART_CUSTOMERS_TLS_CA": f.CA, "CART_CUSTOMERS_TLS_SERVER_NAME": "localhost"}, http.StatusServiceUnavailable},
		{"certificate from another CA", map[string]string{"CART_CUSTOMERS_TLS_CA": f.CA, "CART_CUSTOMERS_TLS_CERT": f.OtherClientCert, "CART_CUSTOMERS_TLS_KEY": f.OtherClientKey, "CART_CUSTOMERS_TLS_SERVER_NAME": "localhost"}, http.StatusServiceUnavailable},
		{"another name's certificate from the CA", map[string]string{"CART_CUSTOMERS_TLS_CA": f.CA, "CART_CUSTOMERS_TLS_CERT": f.IntruderCert, "CART_CUSTOMERS_TLS_KEY": f.IntruderKey, "CART_CUSTOMERS_TLS_SERVER_NAME": "localhost"}, http.StatusServiceUnavailable},
		{"plaintext", nil, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, "sqlite", c.grpc, tt.env)
			if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != tt.want {
				t.Errorf("GET cart = %d %s, want %d", res.Code, res.Raw, tt.want)
			}
		})
	}
}

// TestNoSecretsInLogs checks cart's log after a session for tokens.
func TestNoSecretsInLogs(t *testing.T) {
	c, h := startShop(t, "sqlite")
	tok := c.login("nonadmin3@email.com", demoPassword)
	h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
	h.do(http.MethodGet, "/api/v1/carts/me", tok+"x", nil)
	for name, logs := range map[string]string{"cart": h.logs.String(), "customers": c.logs.String()} {
		for _, secret := range []string{tok[:40], tok[len(tok)-20:], demoPassword, testSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("%s log contains a secret (%.8s...)", name, secret)
			}
		}
	}
}

// TestDevCertsWork runs the pair on the certificates `make certs` writes: customers with mutual
// TLS pinned to cart, cart with its client certificate, and cart's own gRPC port over TLS,
// which a plaintext client cannot use.
func TestDevCertsWork(t *testing.T) {
	dir := t.TempDir()
	if err := devcerts.Generate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	file := func(name string) string { return filepath.Join(dir, name) }
	c := startCustomers(t, "sqlite", map[string]string{
		"CUSTOMERS_GRPC_TLS_CERT":         file(devcerts.CustomersCert),
		"CUSTOMERS_GRPC_TLS_KEY":          file(devcerts.CustomersKey),
		"CUSTOMERS_GRPC_TLS_CLIENT_CA":    file(devcerts.CACert),
		"CUSTOMERS_GRPC_TLS_CLIENT_NAMES": "cart",
	})
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{
		"CART_CUSTOMERS_ADDR":            c.grpc,
		"CART_GRPC_TLS_CERT":             file(devcerts.CartServerCert),
		"CART_GRPC_TLS_KEY":              file(devcerts.CartServerKey),
		"CART_CUSTOMERS_TLS_CA":          file(devcerts.CACert),
		"CART_CUSTOMERS_TLS_CERT":        file(devcerts.CartClientCert),
		"CART_CUSTOMERS_TLS_KEY":         file(devcerts.CartClientKey),
		"CART_CUSTOMERS_TLS_SERVER_NAME": "localhost",
	})
	h := harnessOf(t, s)
	tok := c.login("nonadmin3@email.com", demoPassword)
	if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != http.StatusOK {
		t.Errorf("GET cart over mutual TLS = %d %s", res.Code, res.Raw)
	}
	clientTLS, err := tlsconfig.Client(file(devcerts.CACert), "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		creds credentials.TransportCredentials
		ok    bool
	}{
		{"TLS", credentials.NewTLS(clientTLS), true},
		{"plaintext", insecure.NewCredentials(), false},
	} {
		conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(tt.creds))
		if err != nil {
			t.Fatal(err)
		}
		_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		_ = conn.Close()
		if (err == nil) != tt.ok {
			t.Errorf("health check of cart's gRPC port over %s: %v, want success %v", tt.name, err, tt.ok)
		}
	}
	if res := h.do(http.MethodGet, "/readyz", "", nil); res.Code != http.StatusOK {
		t.Errorf("cart readyz over mutual TLS = %d", res.Code)
	}
}

// TestProductionOverMutualTLS: both services start in production when configured properly
// (their own secrets, no demo data, TLS on both gRPC ports, customers' mutual TLS pinned to
// cart) and serve a shopper end to end.
func TestProductionOverMutualTLS(t *testing.T) {
	f := tlstest.Write(t)
	nats := eventstest.Start(t)
	c := startCustomers(t, "sqlite", map[string]string{
		"APP_ENV": "production", "CUSTOMERS_NATS_URL": nats.URL,
		"CUSTOMERS_GRPC_TLS_CERT": f.ServerCert, "CUSTOMERS_GRPC_TLS_KEY": f.ServerKey,
		"CUSTOMERS_GRPC_TLS_CLIENT_CA": f.CA, "CUSTOMERS_GRPC_TLS_CLIENT_NAMES": "cart",
	})
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{
		"APP_ENV": "production", "CART_NATS_URL": nats.URL,
		"CART_PAGE_TOKEN_SECRET": "a-page-token-secret-of-at-least-32-bytes",
		"CART_GRPC_TLS_CERT":     f.ServerCert, "CART_GRPC_TLS_KEY": f.ServerKey,
		"CART_CUSTOMERS_ADDR":   c.grpc,
		"CART_CUSTOMERS_TLS_CA": f.CA, "CART_CUSTOMERS_TLS_CERT": f.ClientCert, "CART_CUSTOMERS_TLS_KEY": f.ClientKey,
		"CART_CUSTOMERS_TLS_SERVER_NAME": "localhost",
	})
	h := harnessOf(t, s)
	_, id, tok := c.shopper()
	res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil)
	if res.Code != http.StatusOK || !strings.Contains(string(res.Raw), id) {
		t.Errorf("GET cart in production over mutual TLS = %d %s", res.Code, res.Raw)
	}
	if res := h.do(http.MethodGet, "/api/v1/products", "", nil); res.Code != http.StatusOK || strings.Contains(string(res.Raw), migrations.DemoProductIDs[0]) {
		t.Errorf("catalog in production = %d %s, want 200 without the demo catalog", res.Code, res.Raw)
	}
}
