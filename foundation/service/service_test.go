package service_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/service"
)

// own is a service's own configuration in these tests.
type own struct {
	Limit int `env:"LIMIT" default:"7" min:"1" max:"10" help:"A limit."`
}

var spec = service.Spec[own]{Name: "shop", HTTPAddr: ":1001", GRPCAddr: ":1002"}

// TestUnsetEnvIsProduction: a binary started without configuration is the production one, and
// refuses what only development allows, rather than serving demo accounts in clear text.
func TestUnsetEnvIsProduction(t *testing.T) {
	_, _, err := service.Load(spec, envconf.Map(nil))
	if err == nil || !strings.Contains(err.Error(), "SHOP_GRPC_TLS_CERT") {
		t.Errorf("Load without APP_ENV: %v, want production's refusal of plaintext gRPC", err)
	}
	s, _, err := service.Load(spec, envconf.Map(map[string]string{"SHOP_ALLOW_PLAINTEXT_GRPC": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Production() || s.DemoData {
		t.Errorf("without APP_ENV: production %v, demo data %v; want production without demo data", s.Production(), s.DemoData)
	}
}

func TestLoadDefaults(t *testing.T) {
	s, c, err := service.Load(spec, envconf.Map(map[string]string{"APP_ENV": "development"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr != ":1001" || s.GRPCAddr != ":1002" || s.SQLitePath != "data/shop.db" || s.DatabaseURL != "" || s.DBMaxConns != 10 {
		t.Errorf("address and database defaults wrong: %+v", s)
	}
	if s.Production() || !s.DemoData || s.GRPCTLS.Enabled() || c.Limit != 7 {
		t.Errorf("development defaults wrong: %+v, %+v", s, c)
	}
}

func TestLoadReadsThePrefix(t *testing.T) {
	s, _, err := service.Load(spec, envconf.Map(map[string]string{
		"APP_ENV":        "development",
		"SHOP_HTTP_ADDR": ":2001", "SHOP_GRPC_ADDR": ":2002", "SHOP_DATABASE_URL": "postgres://u:p@h/db",
		"SHOP_DB_MAX_CONNS": "3", "SHOP_DEMO_DATA": "false", "CART_HTTP_ADDR": ":9999",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr != ":2001" || s.GRPCAddr != ":2002" || s.DatabaseURL == "" || s.DBMaxConns != 3 || s.DemoData {
		t.Errorf("settings = %+v", s)
	}
}

// TestEmptyMetricsAddrSwitchesMetricsOff: unset, <SVC>_METRICS_ADDR is the service's
// default; set to the empty string, metrics are off (MetricsAddr empty), as the docs say.
func TestEmptyMetricsAddrSwitchesMetricsOff(t *testing.T) {
	withMetrics := spec
	withMetrics.MetricsAddr = ":1003"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unset", map[string]string{"APP_ENV": "development"}, ":1003"},
		{"empty", map[string]string{"APP_ENV": "development", "SHOP_METRICS_ADDR": ""}, ""},
		{"set", map[string]string{"APP_ENV": "development", "SHOP_METRICS_ADDR": "127.0.0.1:2003"}, "127.0.0.1:2003"},
	} {
		s, _, err := service.Load(withMetrics, envconf.Map(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if s.MetricsAddr != tc.want {
			t.Errorf("%s: MetricsAddr = %q, want %q", tc.name, s.MetricsAddr, tc.want)
		}
	}
}

// TestLoadNamesEveryBadVariable: shared and own settings are checked together, and each
// problem names its variable.
func TestLoadNamesEveryBadVariable(t *testing.T) {
	good := map[string]string{"APP_ENV": "production", "SHOP_ALLOW_PLAINTEXT_GRPC": "true"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar []string
	}{
		{"bad values", map[string]string{"LOG_FORMAT": "xml", "SHOP_DB_MAX_CONNS": "zero", "SHOP_LIMIT": "99"}, []string{"LOG_FORMAT", "SHOP_DB_MAX_CONNS", "SHOP_LIMIT"}},
		{"pprof on every interface", map[string]string{"SHOP_DEBUG_ADDR": ":6060"}, []string{"SHOP_DEBUG_ADDR"}},
		{"pprof on a public address", map[string]string{"SHOP_DEBUG_ADDR": "10.0.0.5:6060"}, []string{"SHOP_DEBUG_ADDR"}},
		{"pprof on a name", map[string]string{"SHOP_DEBUG_ADDR": "shop.example.com:6060"}, []string{"SHOP_DEBUG_ADDR"}},
		{"not a postgres URL", map[string]string{"SHOP_DATABASE_URL": "mysql://x"}, []string{"SHOP_DATABASE_URL"}},
		{"a database password without a URL", map[string]string{"SHOP_DATABASE_PASSWORD": "pw"}, []string{"SHOP_DATABASE_PASSWORD"}},
		{"a database password without a user", map[string]string{"SHOP_DATABASE_URL": "postgres://db/shop", "SHOP_DATABASE_PASSWORD": "pw"}, []string{"SHOP_DATABASE_PASSWORD"}},
		{"demo data in production", merge(good, map[string]string{"SHOP_DEMO_DATA": "true"}), []string{"SHOP_DEMO_DATA"}},
		{"plaintext gRPC in production", map[string]string{"APP_ENV": "production"}, []string{"SHOP_GRPC_TLS_CERT"}},
		{"certificate without key", map[string]string{"SHOP_GRPC_TLS_CERT": "/c.pem"}, []string{"SHOP_GRPC_TLS_KEY"}},
		{"client CA without certificate", map[string]string{"SHOP_GRPC_TLS_CLIENT_CA": "/ca.pem"}, []string{"SHOP_GRPC_TLS_CERT"}},
		{"a wildcard origin pattern", map[string]string{"SHOP_CORS_ALLOWED_ORIGINS": "https://*example.com"}, []string{"SHOP_CORS_ALLOWED_ORIGINS"}},
		{"an http:// origin in production", merge(good, map[string]string{"SHOP_CORS_ALLOWED_ORIGINS": "https://shop.example,http://shop.example"}), []string{"SHOP_CORS_ALLOWED_ORIGINS"}},
		{"any origin in production", merge(good, map[string]string{"SHOP_CORS_ALLOWED_ORIGINS": "*"}), []string{"SHOP_CORS_ALLOWED_ORIGINS"}},
		{"an IPv6 prefix longer than a /64", map[string]string{"SHOP_CLIENT_IPV6_PREFIX": "128"}, []string{"SHOP_CLIENT_IPV6_PREFIX"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := service.Load(spec, envconf.Map(tt.env))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, v := range tt.wantVar {
				if !strings.Contains(err.Error(), v+":") {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
	s, _, err := service.Load(spec, envconf.Map(good))
	if err != nil {
		t.Fatalf("safe production settings refused: %v", err)
	}
	if s.DemoData {
		t.Error("demo data defaults to on in production")
	}
	if _, _, err := service.Load(spec, envconf.Map(map[string]string{"APP_ENV": "production", "SHOP_GRPC_TLS_CERT": "/c.pem", "SHOP_GRPC_TLS_KEY": "/k.pem"})); err != nil {
		t.Errorf("production with TLS refused: %v", err)
	}
	if _, _, err := service.Load(spec, envconf.Map(merge(good, map[string]string{"SHOP_CORS_ALLOWED_ORIGINS": "https://shop.example,https://admin.shop.example:8443"}))); err != nil {
		t.Errorf("production with https:// origins refused: %v", err)
	}
	if _, _, err := service.Load(spec, envconf.Map(map[string]string{"APP_ENV": "development", "SHOP_CORS_ALLOWED_ORIGINS": "http://localhost:3000,*"})); err != nil {
		t.Errorf("development with http:// origins refused: %v", err)
	}
}

// TestProductionPinsServiceCallers: a service-to-service port (Spec.MutualTLS) served over TLS
// in production requires client certificates and the callers' names; client names need the
// client CA in any mode.
func TestProductionPinsServiceCallers(t *testing.T) {
	internal := spec
	internal.MutualTLS = true
	tlsOn := map[string]string{"APP_ENV": "production", "SHOP_GRPC_TLS_CERT": "/c.pem", "SHOP_GRPC_TLS_KEY": "/k.pem"}
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"server TLS only", tlsOn, false},
		{"any certificate of the CA", merge(tlsOn, map[string]string{"SHOP_GRPC_TLS_CLIENT_CA": "/ca.pem"}), false},
		{"pinned to cart", merge(tlsOn, map[string]string{"SHOP_GRPC_TLS_CLIENT_CA": "/ca.pem", "SHOP_GRPC_TLS_CLIENT_NAMES": "cart"}), true},
		{"names without a CA", map[string]string{"APP_ENV": "development", "SHOP_GRPC_TLS_CERT": "/c.pem", "SHOP_GRPC_TLS_KEY": "/k.pem", "SHOP_GRPC_TLS_CLIENT_NAMES": "cart"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := service.Load(internal, envconf.Map(tt.env))
			if (err == nil) != tt.ok {
				t.Fatalf("Load: %v, want success %v", err, tt.ok)
			}
			if tt.ok && !slices.Equal(s.GRPCTLS.ClientNames, []string{"cart"}) {
				t.Errorf("client names %q, want [cart]", s.GRPCTLS.ClientNames)
			}
		})
	}
	if _, _, err := service.Load(spec, envconf.Map(tlsOn)); err != nil {
		t.Errorf("a port for every client (cart's) refused with server TLS only: %v", err)
	}
}

// TestDebugAddrOnLoopback: pprof listens on loopback, or beyond only when explicitly allowed.
func TestDebugAddrOnLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060", "127.0.0.1:0"} {
		if _, _, err := service.Load(spec, envconf.Map(map[string]string{"APP_ENV": "development", "SHOP_DEBUG_ADDR": addr})); err != nil {
			t.Errorf("SHOP_DEBUG_ADDR=%s refused: %v", addr, err)
		}
	}
	if _, _, err := service.Load(spec, envconf.Map(map[string]string{"APP_ENV": "development", "SHOP_DEBUG_ADDR": ":6060", "SHOP_DEBUG_ALLOW_NON_LOOPBACK": "true"})); err != nil {
		t.Errorf("SHOP_DEBUG_ADDR=:6060 refused though allowed: %v", err)
	}
}

func TestSettingsLogValueRedactsThePassword(t *testing.T) {
	s, _, err := service.Load(spec, envconf.Map(map[string]string{"APP_ENV": "development", "SHOP_DATABASE_URL": "postgres://app:hunter2@db:5432/shop", "SHOP_DATABASE_PASSWORD": "swordfish/1"}))
	if err != nil {
		t.Fatal(err)
	}
	if v := s.LogValue().String(); strings.Contains(v, "hunter2") || strings.Contains(v, "swordfish") || !strings.Contains(v, "db:5432") {
		t.Errorf("LogValue = %s; want the host without the password", v)
	}
}

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"frobnicate"}, "unknown subcommand"},
		{[]string{"serve", "extra"}, "takes no arguments"},
		{[]string{"migrate"}, "SHOP_LIMIT"},
		{[]string{"serve"}, "SHOP_LIMIT"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := service.Command(context.Background(), spec, tc.args, service.Process{LookupEnv: envconf.Map(map[string]string{"SHOP_LIMIT": "0"}), Stdout: &bytes.Buffer{}})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Command(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
			}
		})
	}
	var settings bytes.Buffer
	if err := service.Command(context.Background(), spec, []string{"settings"}, service.Process{LookupEnv: envconf.Map(nil), Stdout: &settings}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nAPP_ENV=development\n", "\nSHOP_HTTP_ADDR=:1001\n", "\n# A limit. From 1 to 10.\nSHOP_LIMIT=7\n"} {
		if !strings.Contains(settings.String(), want) {
			t.Errorf("settings lacks %q:\n%s", want, settings.String())
		}
	}
	var out bytes.Buffer
	if err := service.Command(context.Background(), spec, []string{"version"}, service.Process{LookupEnv: envconf.Map(nil), Stdout: &out}); err != nil || !strings.HasPrefix(out.String(), "shop ") {
		t.Errorf("version = %q, %v; want a line starting with the service's name", out.String(), err)
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestDevelopmentSecretIsWarnedAbout: a secret that fell back on its public development value
// is named in a warning at start-up, and its value is never logged.
func TestDevelopmentSecretIsWarnedAbout(t *testing.T) {
	type withSecret struct {
		Key secret.Value `env:"KEY" dev:"public-development-key-0123456789abcdef" help:"A key."`
	}
	s := service.Spec[withSecret]{Name: "shop", Migrations: func(bool) []*gormigrate.Migration {
		return []*gormigrate.Migration{{ID: "1", Migrate: func(*gorm.DB) error { return nil }}}
	}}
	var logs bytes.Buffer
	env := envconf.Map(map[string]string{"APP_ENV": "development", "SHOP_SQLITE_PATH": filepath.Join(t.TempDir(), "shop.db")})
	if err := service.Command(t.Context(), s, []string{"migrate"}, service.Process{LookupEnv: env, Stdout: &logs}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "using the public development secret") || !strings.Contains(logs.String(), "variable=SHOP_KEY") ||
		strings.Contains(logs.String(), "public-development-key") {
		t.Errorf("log = %s; want a warning naming SHOP_KEY, without its value", logs.String())
	}
}

// TestEventsURL: a serving replica gets its NATS server, none in development when none is
// set, and an error naming the variable in production without one.
func TestEventsURL(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"development without", map[string]string{"APP_ENV": "development"}, "", false},
		{"development with", map[string]string{"APP_ENV": "development", "SHOP_NATS_URL": "nats://127.0.0.1:4222"}, "nats://127.0.0.1:4222", false},
		{"production with", map[string]string{"APP_ENV": "production", "SHOP_ALLOW_PLAINTEXT_GRPC": "true", "SHOP_NATS_URL": "nats://nats:4222"}, "nats://nats:4222", false},
		{"production without", map[string]string{"APP_ENV": "production", "SHOP_ALLOW_PLAINTEXT_GRPC": "true"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := service.Load(spec, envconf.Map(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.EventsURL()
			if got != tt.want {
				t.Errorf("EventsURL = %q, want %q", got, tt.want)
			}
			if tt.wantErr != (err != nil) || (err != nil && !strings.Contains(err.Error(), "SHOP_NATS_URL:")) {
				t.Errorf("EventsURL error = %v, want one naming SHOP_NATS_URL: %v", err, tt.wantErr)
			}
		})
	}
}
