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

	"github.com/acme/shop/customers-svc/internal/customer"
)

// Limits are the throttle's limits (customer.NewThrottle).
func (c Config) Limits() customer.Limits {
	return customer.Limits{
		Window: c.LoginWindow, PerEmailAddr: c.LoginMaxPerEmailAddr, PerAddr: c.LoginMaxPerAddr, PerEmail: c.LoginMaxPerEmail,
		RegisterWindow: c.RegisterWindow, RegisterPerAddr: c.RegisterMaxPerAddr, InFlightPerAddr: c.MaxInFlightPerAddr,
	}
}

// Config is the customers service's own configuration.
type Config struct {
	// JWTSecret signs access tokens, and page tokens through a key derived from it.
	JWTSecret secret.Value
	// TokenTTL is how long an access token lives.
	TokenTTL time.Duration
	// LoginWindow is the login throttle's window; LoginMaxPerEmailAddr, LoginMaxPerAddr and
	// LoginMaxPerEmail are the failed logins allowed in it per (email, client address), per
	// client address, and per email across all addresses.
	LoginWindow                                             time.Duration
	LoginMaxPerEmailAddr, LoginMaxPerAddr, LoginMaxPerEmail int
	// RegisterWindow and RegisterMaxPerAddr limit the registrations from one client address.
	RegisterWindow     time.Duration
	RegisterMaxPerAddr int
	// MaxInFlightPerAddr bounds the logins and registrations one client address may have in
	// progress at once on one replica.
	MaxInFlightPerAddr int
	// HashQueue is how many password hashes may wait for a CPU; beyond it, calls are a 429.
	HashQueue int
	// MaxSessionsPerUser caps a user's live sessions; a login beyond it revokes the oldest.
	MaxSessionsPerUser int
	// SessionSweepInterval is how often expired sessions are deleted.
	SessionSweepInterval time.Duration
}

// DevJWTSecret is the signing secret used when CUSTOMERS_JWT_SECRET is unset in development.
// It is public, so production refuses it.
const DevJWTSecret = "insecure-development-secret-do-not-use-in-production"

// Load reads the configuration with r, which collects every invalid variable.
func Load(r *envconf.Reader, s service.Settings) Config {
	return Config{
		JWTSecret:            r.Secret("CUSTOMERS_JWT_SECRET", DevJWTSecret, s.Production()),
		TokenTTL:             r.Duration("CUSTOMERS_TOKEN_TTL", 15*time.Minute),
		LoginWindow:          r.Duration("CUSTOMERS_LOGIN_WINDOW", 15*time.Minute),
		LoginMaxPerEmailAddr: r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_EMAIL_ADDR", 5, 1, 1000),
		LoginMaxPerAddr:      r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR", 20, 1, 100000),
		LoginMaxPerEmail:     r.Int("CUSTOMERS_LOGIN_MAX_FAILURES_PER_EMAIL", 100, 1, 100000),
		RegisterWindow:       r.Duration("CUSTOMERS_REGISTER_WINDOW", time.Hour),
		RegisterMaxPerAddr:   r.Int("CUSTOMERS_REGISTER_MAX_PER_ADDR", 10, 1, 1000000),
		MaxInFlightPerAddr:   r.Int("CUSTOMERS_MAX_IN_FLIGHT_PER_ADDR", 4, 1, 100000),
		HashQueue:            r.Int("CUSTOMERS_HASH_QUEUE", 32, 1, 10000),
		MaxSessionsPerUser:   r.Int("CUSTOMERS_MAX_SESSIONS_PER_USER", 10, 1, 10000),
		SessionSweepInterval: r.Duration("CUSTOMERS_SESSION_SWEEP_INTERVAL", 5*time.Minute),
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
		slog.Int("login_max_failures_per_email_addr", c.LoginMaxPerEmailAddr),
		slog.Int("login_max_failures_per_addr", c.LoginMaxPerAddr),
		slog.Int("login_max_failures_per_email", c.LoginMaxPerEmail),
		slog.Duration("register_window", c.RegisterWindow),
		slog.Int("register_max_per_addr", c.RegisterMaxPerAddr),
		slog.Int("max_in_flight_per_addr", c.MaxInFlightPerAddr),
		slog.Int("hash_queue", c.HashQueue),
		slog.Int("max_sessions_per_user", c.MaxSessionsPerUser),
		slog.Duration("session_sweep_interval", c.SessionSweepInterval),
	)
}
