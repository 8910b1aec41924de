package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8082" || c.GRPCAddr != ":50052" || c.CustomersAddr != "localhost:50051" || c.MaxQuantity != 99 || !c.DemoData || c.CustomersTLS.Enabled() {
		t.Errorf("defaults wrong: %+v", c)
	}
}

func TestProductionRefusesUnsafeSettings(t *testing.T) {
	secret := "a-page-token-secret-of-at-least-32-bytes"
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"APP_ENV": "production", "CART_PAGE_TOKEN_SECRET": secret, "CART_CUSTOMERS_TLS_CA": "/ca.pem", "CART_CUSTOMERS_TLS_CERT": "/c.pem", "CART_CUSTOMERS_TLS_KEY": "/k.pem"}
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
		{"development page secret", base(map[string]string{"CART_PAGE_TOKEN_SECRET": DevPageTokenSecret}), "CART_PAGE_TOKEN_SECRET"},
		{"plaintext to customers", base(map[string]string{"CART_CUSTOMERS_TLS_CA": "", "CART_CUSTOMERS_TLS_CERT": "", "CART_CUSTOMERS_TLS_KEY": ""}), "CART_CUSTOMERS_TLS_CA"},
		{"certificate without key", base(map[string]string{"CART_CUSTOMERS_TLS_KEY": ""}), "CART_CUSTOMERS_TLS_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("Load error = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
	if _, err := Load(env(base(nil))); err != nil {
		t.Errorf("safe production settings refused: %v", err)
	}
	if _, err := Load(env(base(map[string]string{"CART_CUSTOMERS_TLS_CA": "", "CART_CUSTOMERS_TLS_CERT": "", "CART_CUSTOMERS_TLS_KEY": "", "CART_ALLOW_PLAINTEXT_CUSTOMERS": "true"}))); err != nil {
		t.Errorf("explicitly allowed plaintext refused: %v", err)
	}
}
