package config_test

import (
	"strings"
	"testing"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"

	"github.com/acme/shop/cart-svc/internal/config"
)

// load reads cart's configuration from env, in development unless env sets APP_ENV.
func load(env map[string]string) (config.Config, error) {
	return servicetest.Load(service.Spec[config.Config]{Name: "cart", Check: config.Config.Check}, env)
}

// devPageTokenSecret is the public development secret the declaration names.
func devPageTokenSecret(t *testing.T) string {
	t.Helper()
	settings, err := envconf.Declare(&config.Config{}, "CART_")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if s.Name == "CART_PAGE_TOKEN_SECRET" && s.Secret && s.Dev != "" {
			return s.Dev
		}
	}
	t.Fatal("CART_PAGE_TOKEN_SECRET has no development value")
	return ""
}

func TestDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.CustomersAddr != "localhost:50051" || c.MaxQuantity != 99 || c.CustomersTLS.Enabled() || !c.PageTokenSecret.Equal(devPageTokenSecret(t)) {
		t.Errorf("defaults wrong: %+v", c)
	}
}

func TestProductionRefusesUnsafeSettings(t *testing.T) {
	secret := "a-page-token-secret-of-at-least-32-bytes"
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"APP_ENV": "production", "CART_PAGE_TOKEN_SECRET": secret, "CART_ALLOW_PLAINTEXT_GRPC": "true",
			"CART_CUSTOMERS_TLS_CA": "/ca.pem", "CART_CUSTOMERS_TLS_CERT": "/c.pem", "CART_CUSTOMERS_TLS_KEY": "/k.pem",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"demo data", base(map[string]string{"CART_DEMO_DATA": "true"}), "CART_DEMO_DATA"},
		{"missing page secret", base(map[string]string{"CART_PAGE_TOKEN_SECRET": ""}), "CART_PAGE_TOKEN_SECRET"},
		{"development page secret", base(map[string]string{"CART_PAGE_TOKEN_SECRET": devPageTokenSecret(t)}), "CART_PAGE_TOKEN_SECRET"},
		{"plaintext to customers", base(map[string]string{"CART_CUSTOMERS_TLS_CA": "", "CART_CUSTOMERS_TLS_CERT": "", "CART_CUSTOMERS_TLS_KEY": ""}), "CART_CUSTOMERS_TLS_CA"},
		{"certificate without key", base(map[string]string{"CART_CUSTOMERS_TLS_KEY": ""}), "CART_CUSTOMERS_TLS_KEY"},
		{"TLS to customers without a client certificate", base(map[string]string{"CART_CUSTOMERS_TLS_CERT": "", "CART_CUSTOMERS_TLS_KEY": ""}), "CART_CUSTOMERS_TLS_CERT"},
		{"plaintext gRPC port", base(map[string]string{"CART_ALLOW_PLAINTEXT_GRPC": ""}), "CART_GRPC_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("Load error = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
	if _, err := load(base(nil)); err != nil {
		t.Errorf("safe production settings refused: %v", err)
	}
	if _, err := load(base(map[string]string{"CART_CUSTOMERS_TLS_CA": "", "CART_CUSTOMERS_TLS_CERT": "", "CART_CUSTOMERS_TLS_KEY": "", "CART_ALLOW_PLAINTEXT_CUSTOMERS": "true"})); err != nil {
		t.Errorf("explicitly allowed plaintext refused: %v", err)
	}
	if _, err := load(base(map[string]string{"CART_CUSTOMERS_TLS_CERT": "", "CART_CUSTOMERS_TLS_KEY": "", "CART_ALLOW_CUSTOMERS_WITHOUT_CLIENT_CERT": "true"})); err != nil {
		t.Errorf("explicitly allowed TLS without a client certificate refused: %v", err)
	}
}
