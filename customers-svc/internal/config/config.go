// Package config declares the customers service's own settings, read under the prefix
// CUSTOMERS_; the settings every service shares (addresses, database, logging, TLS, shutdown)
// are foundation/service's. `customers-svc settings`, .env.example and docs/configuration.md
// list them all, from these declarations.
package config

import (
	"time"

	"github.com/acme/shop/foundation/secret"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// Config is the customers service's own configuration; each field's tags declare its
// variable (package envconf).
type Config struct {
	// JWTSecret signs access tokens, and page tokens through a key derived from it.
	JWTSecret secret.Value `env:"JWT_SECRET" dev:"insecure-development-secret-do-not-use-in-production" help:"Secret that signs access tokens (HS256) and page tokens, at least 32 bytes, such as the output of openssl rand -base64 48."`
	// TokenTTL is how long an access token lives.
	TokenTTL time.Duration `env:"TOKEN_TTL" default:"15m" help:"Lifetime of an access token."`
	// LoginWindow is the login throttle's window; LoginMaxPerEmailAddr, LoginMaxPerAddr and
	// LoginMaxPerEmail are the failed logins allowed in it per (email, client address), per
	// client address, and per email across all addresses.
	LoginWindow          time.Duration `env:"LOGIN_WINDOW" default:"15m" help:"The window of the failed password checks (logins, current-password checks) counted below; it starts at the first failure, and once a limit is reached further attempts get 429 with Retry-After until it ends."`
	LoginMaxPerEmailAddr int           `env:"LOGIN_MAX_FAILURES_PER_EMAIL_ADDR" default:"5" min:"1" max:"1000" help:"Failed password checks allowed per (email, client address) in each window."`
	LoginMaxPerAddr      int           `env:"LOGIN_MAX_FAILURES_PER_ADDR" default:"20" min:"1" max:"100000" help:"Failed password checks allowed per client address in each window."`
	LoginMaxPerEmail     int           `env:"LOGIN_MAX_FAILURES_PER_EMAIL" default:"100" min:"1" max:"100000" help:"Failed password checks allowed per email across all addresses in each window; it never refuses an address that has not failed."`
	// RegisterWindow and RegisterMaxPerAddr limit the registrations from one client address.
	RegisterWindow     time.Duration `env:"REGISTER_WINDOW" default:"1h" help:"The window of the registrations counted per client address."`
	RegisterMaxPerAddr int           `env:"REGISTER_MAX_PER_ADDR" default:"10" min:"1" max:"1000000" help:"Registrations allowed per client address in each window (an admin's are not counted)."`
	// MaxInFlightPerAddr bounds the logins and registrations one client address may have in
	// progress at once on one replica.
	MaxInFlightPerAddr int `env:"MAX_IN_FLIGHT_PER_ADDR" default:"4" min:"1" max:"100000" help:"Logins and registrations one client address may have in progress at once on one replica."`
	// HashQueue is how many password hashes may wait for a CPU; beyond it, calls are a 429.
	HashQueue int `env:"HASH_QUEUE" default:"32" min:"1" max:"10000" help:"Password hashes that may wait for a CPU; beyond it, a call is a 429 at once."`
	// MaxSessionsPerUser caps a user's live sessions; a login beyond it revokes the oldest.
	MaxSessionsPerUser int `env:"MAX_SESSIONS_PER_USER" default:"10" min:"1" max:"10000" help:"Live sessions per user; a login beyond it revokes the oldest."`
	// SessionSweepInterval is how often expired sessions are deleted.
	SessionSweepInterval time.Duration `env:"SESSION_SWEEP_INTERVAL" default:"5m" help:"How often expired sessions, and outbox events sent longer than OUTBOX_RETENTION ago, are deleted."`
	// OutboxRetention is how long an event stays in the outbox after JetStream acknowledged it.
	OutboxRetention time.Duration `env:"OUTBOX_RETENTION" default:"24h" min:"1m" help:"How long an event (UserDeleted) stays in the outbox after NATS JetStream acknowledged it, for looking back at what was published; pending events are never deleted."`
}

// Limits are the throttle's limits (customer.NewThrottle); ipv6Prefix is the shared setting
// of the network an IPv6 client counts as (service.Settings.ClientIPv6Prefix).
func (c Config) Limits(ipv6Prefix int) customer.Limits {
	return customer.Limits{
		Window: c.LoginWindow, PerEmailAddr: c.LoginMaxPerEmailAddr, PerAddr: c.LoginMaxPerAddr, PerEmail: c.LoginMaxPerEmail,
		RegisterWindow: c.RegisterWindow, RegisterPerAddr: c.RegisterMaxPerAddr, InFlightPerAddr: c.MaxInFlightPerAddr,
		IPv6Prefix: ipv6Prefix,
	}
}
