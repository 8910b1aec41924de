// Package config reads the customers service's own settings; the settings every service shares
// (addresses, database, logging, TLS, shutdown) are foundation/service's. Every variable is
// listed, with its default, in .env.example at the repository root.
package config

import (
	"log/slog"
	"time"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/service"
)

// Config is the customers service's own configuration.
type Config struct {
	// JWTSecret signs access tokens, and page tokens through a key derived from it.
	JWTSecret secret.Value
	// TokenTTL is how long an access token lives.
	TokenTTL time.Duration
	// LoginWindow is the throttle's window; LoginMaxPerEmail and LoginMaxPerAddr are the failed
	// logins allowed in it per email and per client address.
	LoginWindow                       time.Duration
	LoginMaxPerEmail, LoginMaxPerAddr int
}

// DevJWTSecret is the signing secret used when CUSTOMERS_JWT_SECRET is unset in development.
// It is public, so production refuses it.
const DevJWTSecret = "insecure-development-secret-do-not-use-in-production"

// Load reads the configuration with r, which collects every invalid variable.
func Load(r *envconf.Reader, s service.Settings) Config {
	return Config{
		JWTSecret:        r.Secret("CUSTOMERS_JWT_SECRET", DevJWTSecret, s.Production()),
		TokenTTL:         r.Duration("CUSTOMERS_TOKEN_TTL", 15*time.Minute),
		LoginWindow:      r.Duration("CUSTOMERS_LOGIN_WINDOW", 15*time.Minute),
		LoginMaxPerEmail: r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_EMAIL", 5, 1, 1000),
		LoginMaxPerAddr:  r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR", 20, 1, 100000),
	}
}

// DevSecret reports whether tokens are signed with the public development secret: anyone can
// forge them, which the start-up log warns about.
func (c Config) DevSecret() bool { return c.JWTSecret.Equal(DevJWTSecret) }

// LogValue lets the configuration be logged at start-up; the secret logs as [REDACTED].
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("jwt_secret", c.JWTSecret),
		slog.Bool("dev_jwt_secret", c.DevSecret()),
		slog.Duration("token_ttl", c.TokenTTL),
		slog.Duration("login_window", c.LoginWindow),
		slog.Int("login_max_failures_per_email", c.LoginMaxPerEmail),
		slog.Int("login_max_failures_per_addr", c.LoginMaxPerAddr),
	)
}
