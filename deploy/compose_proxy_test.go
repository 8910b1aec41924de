package deploy_test

import (
	"strings"
	"testing"
)

// TestComposeProductionTrustsTheProxy: behind the reverse proxy the production recipe asks for,
// every client has the proxy's address unless customers believes its X-Forwarded-For. compose
// refuses the production recipe until CUSTOMERS_TRUSTED_PROXIES is set (empty is a choice: no
// proxy), and passes what it is set to.
func TestComposeProductionTrustsTheProxy(t *testing.T) {
	environ := map[string]string{
		"CUSTOMERS_JWT_SECRET": opensslBase64(48), "CART_PAGE_TOKEN_SECRET": opensslBase64(48),
		"GRAFANA_ADMIN_PASSWORD": opensslBase64(24),
		"CUSTOMERS_DB_PASSWORD":  opensslBase64(24), "CART_DB_PASSWORD": opensslBase64(24),
	}
	if _, err := renderProduction(environ); err == nil || !strings.Contains(err.Error(), "CUSTOMERS_TRUSTED_PROXIES") {
		t.Fatalf("rendered without CUSTOMERS_TRUSTED_PROXIES: error %v, want one naming it", err)
	}
	for _, proxies := range []string{"172.18.0.1", "10.0.0.0/8,192.0.2.7", ""} {
		environ["CUSTOMERS_TRUSTED_PROXIES"] = proxies
		env, err := renderProduction(environ)
		if err != nil {
			t.Fatalf("CUSTOMERS_TRUSTED_PROXIES=%q: %v", proxies, err)
		}
		if got, ok := env["customers"]["CUSTOMERS_TRUSTED_PROXIES"]; !ok || got != proxies {
			t.Errorf("CUSTOMERS_TRUSTED_PROXIES=%q: customers gets %q (set: %v)", proxies, got, ok)
		}
	}
}
