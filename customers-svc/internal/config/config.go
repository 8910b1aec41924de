// Package config loads the customers service's settings from the environment. Every variable
// is listed, with its default, in .env.example at the repository root.
package config

import (
	"log/slog"
	"net/url"
	"time"

	"github.com/acme/shop/foundation/envconf"
)

// Config is the customers service's configuration.
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
	// DemoData adds the demo users of the API contract (development only).
	DemoData bool
	// JWTSecret signs access tokens and page tokens; at least 32 bytes.
	JWTSecret []byte
	// TokenTTL is how long an access token lives.
	TokenTTL time.Duration
	// LoginWindow is the throttle's window; LoginMaxPerEmail and LoginMaxPerAddr are the failed
	// logins allowed in it per email and per client address.
	LoginWindow                       time.Duration
	LoginMaxPerEmail, LoginMaxPerAddr int
	// GRPCTLS, when Cert and Key are set, serves gRPC over TLS; with ClientCA, clients (cart)
	// must present a certificate signed by it (mutual TLS).
	GRPCTLS TLS
	// AllowPlaintextGRPC lets production serve gRPC without TLS.
	AllowPlaintextGRPC bool
}

// TLS names the PEM files of the gRPC server's TLS.
type TLS struct {
	Cert, Key, ClientCA string
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.Cert != "" }

// DevJWTSecret is the signing secret used when CUSTOMERS_JWT_SECRET is unset in development.
// It is public, so production refuses it.
const DevJWTSecret = "insecure-development-secret-do-not-use-in-production"

// minSecretLen is the shortest signing secret accepted (the HMAC-SHA256 output size).
const minSecretLen = 32

// Load reads the configuration through getenv, applying defaults, and reports every invalid
// variable at once.
func Load(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Env:              r.OneOf("APP_ENV", "development", "development", "production"),
		LogLevel:         r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:        r.OneOf("LOG_FORMAT", "text", "text", "json"),
		HTTPAddr:         r.String("CUSTOMERS_HTTP_ADDR", ":8081"),
		GRPCAddr:         r.String("CUSTOMERS_GRPC_ADDR", ":50051"),
		DatabaseURL:      r.String("CUSTOMERS_DATABASE_URL", ""),
		SQLitePath:       r.String("CUSTOMERS_SQLITE_PATH", "data/customers.db"),
		DBMaxConns:       r.Int("CUSTOMERS_DB_MAX_CONNS", 10, 1, 1000),
		ShutdownTimeout:  r.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		DrainDelay:       r.DelayDuration("SHUTDOWN_DRAIN_DELAY", 0),
		DebugAddr:        r.String("CUSTOMERS_DEBUG_ADDR", ""),
		TokenTTL:         r.Duration("CUSTOMERS_TOKEN_TTL", 15*time.Minute),
		LoginWindow:      r.Duration("CUSTOMERS_LOGIN_WINDOW", 15*time.Minute),
		LoginMaxPerEmail: r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_EMAIL", 5, 1, 1000),
		LoginMaxPerAddr:  r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR", 20, 1, 100000),
	}
	// Demo data and the development secret are conveniences of development; production must
	// opt out of neither by accident, so it refuses them rather than defaulting around them.
	c.DemoData = r.Bool("CUSTOMERS_DEMO_DATA", !c.Production())
	secret := r.String("CUSTOMERS_JWT_SECRET", "")
	switch {
	case secret == "" && c.Production():
		r.Fail("CUSTOMERS_JWT_SECRET", "is required in production (a random string of at least %d bytes, e.g. `openssl rand -base64 48`)", minSecretLen)
	case secret == DevJWTSecret && c.Production():
		r.Fail("CUSTOMERS_JWT_SECRET", "is the public development secret; production needs its own")
	case secret == "":
		secret = DevJWTSecret
	case len(secret) < minSecretLen:
		r.Fail("CUSTOMERS_JWT_SECRET", "must be at least %d bytes, got %d", minSecretLen, len(secret))
	}
	c.JWTSecret = []byte(secret)
	c.GRPCTLS = TLS{
		Cert:     r.String("CUSTOMERS_GRPC_TLS_CERT", ""),
		Key:      r.String("CUSTOMERS_GRPC_TLS_KEY", ""),
		ClientCA: r.String("CUSTOMERS_GRPC_TLS_CLIENT_CA", ""),
	}
	c.AllowPlaintextGRPC = r.Bool("CUSTOMERS_ALLOW_PLAINTEXT_GRPC", false)
	if (c.GRPCTLS.Cert == "") != (c.GRPCTLS.Key == "") {
		r.Fail("CUSTOMERS_GRPC_TLS_KEY", "CUSTOMERS_GRPC_TLS_CERT and CUSTOMERS_GRPC_TLS_KEY go together")
	}
	if c.GRPCTLS.ClientCA != "" && !c.GRPCTLS.Enabled() {
		r.Fail("CUSTOMERS_GRPC_TLS_CERT", "is required when CUSTOMERS_GRPC_TLS_CLIENT_CA is set")
	}
	if c.Production() && !c.GRPCTLS.Enabled() && !c.AllowPlaintextGRPC {
		r.Fail("CUSTOMERS_GRPC_TLS_CERT", "production serves gRPC over TLS: set CUSTOMERS_GRPC_TLS_CERT, CUSTOMERS_GRPC_TLS_KEY and CUSTOMERS_GRPC_TLS_CLIENT_CA, or CUSTOMERS_ALLOW_PLAINTEXT_GRPC=true on a trusted network")
	}
	if c.DemoData && c.Production() {
		r.Fail("CUSTOMERS_DEMO_DATA", "must be false in production: demo users have a published password")
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.Fail("CUSTOMERS_DATABASE_URL", "want a postgres:// URL")
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
		slog.Bool("dev_jwt_secret", string(c.JWTSecret) == DevJWTSecret),
		slog.Duration("token_ttl", c.TokenTTL),
		slog.Bool("grpc_tls", c.GRPCTLS.Enabled()),
		slog.Bool("grpc_mutual_tls", c.GRPCTLS.ClientCA != ""),
	)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
