package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"

	"github.com/acme/shop/customers-svc/internal/config"
)

// load reads customers's configuration from env, in development unless env sets APP_ENV.
func load(env map[string]string) (config.Config, error) {
	return servicetest.Load(service.Spec[config.Config]{Name: "customers", Config: config.Load}, env)
}

func TestDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevSecret() || c.TokenTTL != 15*time.Minute || c.LoginMaxPerEmailAddr != 5 || c.LoginMaxPerAddr != 20 ||
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
		{"development secret", map[string]string{"APP_ENV": "production", "CUSTOMERS_JWT_SECRET": config.DevJWTSecret}, "CUSTOMERS_JWT_SECRET"},
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

func TestLogValueHidesTheSecretButNotTheWarning(t *testing.T) {
	const own = "a-very-secret-signing-key-0123456789abcdef"
	c, err := load(map[string]string{"CUSTOMERS_JWT_SECRET": own})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.LogValue().String(); strings.Contains(s, own) || !strings.Contains(s, "dev_jwt_secret=false") {
		t.Errorf("LogValue = %s; want the secret redacted and dev_jwt_secret=false shown", s)
	}
	dev, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := dev.LogValue().String(); !strings.Contains(s, "dev_jwt_secret=true") || strings.Contains(s, config.DevJWTSecret) {
		t.Errorf("LogValue = %s; want dev_jwt_secret=true visible and the secret redacted", s)
	}
}
