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
}

// Load reads the configuration through getenv, applying defaults, and reports every invalid
// variable at once.
func Load(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Env:             r.OneOf("APP_ENV", "development", "development", "production"),
		LogLevel:        r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:       r.OneOf("LOG_FORMAT", "text", "text", "json"),
		HTTPAddr:        r.String("CUSTOMERS_HTTP_ADDR", ":8081"),
		GRPCAddr:        r.String("CUSTOMERS_GRPC_ADDR", ":50051"),
		DatabaseURL:     r.String("CUSTOMERS_DATABASE_URL", ""),
		SQLitePath:      r.String("CUSTOMERS_SQLITE_PATH", "data/customers.db"),
		DBMaxConns:      r.Int("CUSTOMERS_DB_MAX_CONNS", 10, 1, 1000),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
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
	)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
