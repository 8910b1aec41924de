package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8081" || c.GRPCAddr != ":50051" || c.SQLitePath != "data/customers.db" || c.DatabaseURL != "" {
		t.Errorf("addresses/database defaults wrong: %+v", c)
	}
	if !c.DemoData || string(c.JWTSecret) != DevJWTSecret || c.TokenTTL != 15*time.Minute {
		t.Errorf("development defaults wrong: demo %v, ttl %v", c.DemoData, c.TokenTTL)
	}
}

func TestProductionRefusesUnsafeSettings(t *testing.T) {
	good := "a-production-secret-that-is-long-enough-0123456789"
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"missing secret", map[string]string{"APP_ENV": "production"}, "CUSTOMERS_JWT_SECRET"},
		{"development secret", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": DevJWTSecret}, "CUSTOMERS_JWT_SECRET"},
		{"short secret", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": "short"}, "CUSTOMERS_JWT_SECRET"},
		{"demo data", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good, "CUSTOMERS_DEMO_DATA": "true", "CUSTOMERS_ALLOW_PLAINTEXT_GRPC": "true"}, "CUSTOMERS_DEMO_DATA"},
		{"plaintext gRPC", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good}, "CUSTOMERS_GRPC_TLS_CERT"},
		{"certificate without key", map[string]string{"CUSTOMERS_GRPC_TLS_CERT": "/c.pem"}, "CUSTOMERS_GRPC_TLS_KEY"},
		{"client CA without certificate", map[string]string{"CUSTOMERS_GRPC_TLS_CLIENT_CA": "/ca.pem"}, "CUSTOMERS_GRPC_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("Load error = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
	c, err := Load(env(map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good, "CUSTOMERS_GRPC_TLS_CERT": "/c.pem", "CUSTOMERS_GRPC_TLS_KEY": "/k.pem", "CUSTOMERS_GRPC_TLS_CLIENT_CA": "/ca.pem"}))
	if err != nil {
		t.Fatalf("safe production settings refused: %v", err)
	}
	if _, err := Load(env(map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good, "CUSTOMERS_ALLOW_PLAINTEXT_GRPC": "true"})); err != nil {
		t.Errorf("explicitly allowed plaintext refused: %v", err)
	}
	if c.DemoData {
		t.Error("demo data defaults to on in production")
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{
		"CUSTOMERS_JWT_SECRET":   "a-very-secret-signing-key-0123456789abcdef",
		"CUSTOMERS_DATABASE_URL": "postgres://app:hunter2@db:5432/customers",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.LogValue().String()
	for _, secret := range []string{"a-very-secret", "hunter2"} {
		if strings.Contains(s, secret) {
			t.Errorf("LogValue shows %q: %s", secret, s)
		}
	}
}
