package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"

	"github.com/acme/shop/customers-svc/internal/config"
)

// load reads customers's configuration from env, in development unless env sets APP_ENV.
func load(env map[string]string) (config.Config, error) {
	return servicetest.Load(service.Spec[config.Config]{Name: "customers"}, env)
}

// devJWTSecret is the public development secret the declaration names.
func devJWTSecret(t *testing.T) string {
	t.Helper()
	settings, err := envconf.Declare(&config.Config{}, "CUSTOMERS_")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if s.Name == "CUSTOMERS_JWT_SECRET" && s.Secret && s.Dev != "" {
			return s.Dev
		}
	}
	t.Fatal("CUSTOMERS_JWT_SECRET has no development value")
	return ""
}

func TestDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.JWTSecret.Equal(devJWTSecret(t)) || c.TokenTTL != 15*time.Minute || c.LoginMaxPerEmailAddr != 5 || c.LoginMaxPerAddr != 20 ||
		c.LoginMaxPerEmail != 100 || c.RegisterMaxPerAddr != 10 || c.HashQueue != 32 {
		t.Errorf("development defaults wrong: %+v", c)
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
		{"development secret", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": devJWTSecret(t)}, "CUSTOMERS_JWT_SECRET"},
		{"short secret", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": "short"}, "CUSTOMERS_JWT_SECRET"},
		{"demo data", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good, "CUSTOMERS_DEMO_DATA": "true", "CUSTOMERS_ALLOW_PLAINTEXT_GRPC": "true"}, "CUSTOMERS_DEMO_DATA"},
		{"plaintext gRPC", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good}, "CUSTOMERS_GRPC_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("Load error = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
	if _, err := load(map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": good, "CUSTOMERS_ALLOW_PLAINTEXT_GRPC": "true"}); err != nil {
		t.Errorf("safe production settings refused: %v", err)
	}
}
