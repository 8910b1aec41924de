// Package config loads the cart service's settings from the environment. Every variable
// is listed, with its default, in .env.example at the repository root.
package config

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/acme/shop/foundation/envconf"
)

// Config is the cart service's configuration.
type Config struct {
	// Env is "development" or "production"; production refuses unsafe settings.
	Env string
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel, LogFormat string
	// HTTPAddr is where the REST gateway, Swagger UI and health endpoints listen.
	HTTPAddr string
	// GRPCAddr is where the gRPC server listens.
	GRPCAddr string
	// DatabaseURL is the PostgreSQL DSN; empty means the embedded SQLite file at SQLitePath.
	DatabaseURL string
	// SQLitePath is the embedded database file used when DatabaseURL is empty.
	SQLitePath string
	// DBMaxConns bounds the PostgreSQL connection pool.
	DBMaxConns int
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// DrainDelay is how long a stopping service keeps serving after it reports not ready.
	DrainDelay time.Duration
	// DebugAddr, when set, serves pprof profiles there (keep it on loopback).
	DebugAddr string
	// DemoData adds the demo catalog and carts (development only).
	DemoData bool
	// MaxQuantity is the largest quantity of one cart line.
	MaxQuantity int32
	// PageTokenSecret signs the product list's page tokens.
	PageTokenSecret []byte
	// CustomersAddr is the customers service's gRPC address (host:port).
	CustomersAddr string
	// CustomersTimeout bounds each ValidateToken call.
	CustomersTimeout time.Duration
	// CustomersTLS, when CA is set, makes the link to customers TLS; with a certificate and
	// key, mutual TLS.
	CustomersTLS TLS
	// AllowPlaintextCustomers lets production talk to customers without TLS.
	AllowPlaintextCustomers bool
}

// TLS names the PEM files of a TLS client.
type TLS struct {
	CA, Cert, Key, ServerName string
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CA != "" }

// DevPageTokenSecret signs page tokens when CART_PAGE_TOKEN_SECRET is unset in development.
// It is public, so production refuses it.
const DevPageTokenSecret = "insecure-development-page-token-secret"

// Load reads the configuration through getenv, applying defaults, and reports every invalid
// variable at once.
func Load(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Env:              r.OneOf("APP_ENV", "development", "development", "production"),
		LogLevel:         r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:        r.OneOf("LOG_FORMAT", "text", "text", "json"),
		HTTPAddr:         r.String("CART_HTTP_ADDR", ":8082"),
		GRPCAddr:         r.String("CART_GRPC_ADDR", ":50052"),
		DatabaseURL:      r.String("CART_DATABASE_URL", ""),
		SQLitePath:       r.String("CART_SQLITE_PATH", "data/cart.db"),
		DBMaxConns:       r.Int("CART_DB_MAX_CONNS", 10, 1, 1000),
		ShutdownTimeout:  r.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		DrainDelay:       r.DelayDuration("SHUTDOWN_DRAIN_DELAY", 0),
		DebugAddr:        r.String("CART_DEBUG_ADDR", ""),
		MaxQuantity:      int32(r.Int("CART_MAX_QUANTITY", 99, 1, 10000)), //nolint:gosec // bounded to 10000 just above
		CustomersAddr:    r.String("CART_CUSTOMERS_ADDR", "localhost:50051"),
		CustomersTimeout: r.Duration("CART_CUSTOMERS_TIMEOUT", 2*time.Second),
		CustomersTLS: TLS{
			CA:         r.String("CART_CUSTOMERS_TLS_CA", ""),
			Cert:       r.String("CART_CUSTOMERS_TLS_CERT", ""),
			Key:        r.String("CART_CUSTOMERS_TLS_KEY", ""),
			ServerName: r.String("CART_CUSTOMERS_TLS_SERVER_NAME", ""),
		},
		AllowPlaintextCustomers: r.Bool("CART_ALLOW_PLAINTEXT_CUSTOMERS", false),
	}
	c.DemoData = r.Bool("CART_DEMO_DATA", !c.Production())
	if c.DemoData && c.Production() {
		r.Fail("CART_DEMO_DATA", "must be false in production")
	}
	secret := r.String("CART_PAGE_TOKEN_SECRET", "")
	switch {
	case (secret == "" || secret == DevPageTokenSecret) && c.Production():
		r.Fail("CART_PAGE_TOKEN_SECRET", "needs a secret of its own in production (a random string of at least 32 bytes)")
	case secret == "":
		secret = DevPageTokenSecret
	case len(secret) < 32:
		r.Fail("CART_PAGE_TOKEN_SECRET", "must be at least 32 bytes, got %d", len(secret))
	}
	c.PageTokenSecret = []byte(secret)
	tlsCfg := c.CustomersTLS
	if !tlsCfg.Enabled() && (tlsCfg.Cert != "" || tlsCfg.Key != "") {
		r.Fail("CART_CUSTOMERS_TLS_CA", "is required when a client certificate is configured")
	}
	if (tlsCfg.Cert == "") != (tlsCfg.Key == "") {
		r.Fail("CART_CUSTOMERS_TLS_KEY", "CART_CUSTOMERS_TLS_CERT and CART_CUSTOMERS_TLS_KEY go together")
	}
	if c.Production() && !tlsCfg.Enabled() && !c.AllowPlaintextCustomers {
		r.Fail("CART_CUSTOMERS_TLS_CA", "production talks to customers over TLS: set CART_CUSTOMERS_TLS_CA (and a client certificate), or CART_ALLOW_PLAINTEXT_CUSTOMERS=true on a trusted network")
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.Fail("CART_DATABASE_URL", "want a postgres:// URL")
		}
	}
	return c, r.Err()
}

// Production reports whether the service runs in production mode.
func (c Config) Production() bool { return c.Env == "production" }

// LogValue lets the configuration be logged at start-up without its secrets.
func (c Config) LogValue() slog.Value {
	db := "sqlite:" + c.SQLitePath
	if c.DatabaseURL != "" {
		db = redactURL(c.DatabaseURL)
	}
	return slog.GroupValue(
		slog.String("env", c.Env),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("grpc_addr", c.GRPCAddr),
		slog.String("db", db),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Bool("demo_data", c.DemoData),
		slog.String("customers_addr", c.CustomersAddr),
		slog.Bool("customers_tls", c.CustomersTLS.Enabled()),
		slog.Bool("customers_client_cert", c.CustomersTLS.Cert != ""),
	)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
