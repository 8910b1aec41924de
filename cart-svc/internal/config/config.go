// Package config reads the cart service's own settings; the settings every service shares
// (addresses, database, logging, TLS, shutdown) are foundation/service's. Every variable is
// listed, with its default, in .env.example at the repository root.
package config

import (
	"log/slog"
	"time"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/tlsconfig"
)

// Config is the cart service's own configuration.
type Config struct {
	// MaxQuantity is the largest quantity of one cart line.
	MaxQuantity int32
	// PageTokenSecret signs the product list's page tokens.
	PageTokenSecret secret.Value
	// CustomersAddr is the customers service's gRPC target: host:port, or a name such as
	// dns:///customers-grpc:50051 whose every address cart balances over.
	CustomersAddr string
	// CustomersTimeout bounds each ValidateTokens call, and each validation's whole wait.
	CustomersTimeout time.Duration
	// CustomersTLS, when CA is set, makes the link to customers TLS; with a certificate and
	// key, mutual TLS.
	CustomersTLS tlsconfig.ClientFiles
	// AllowPlaintextCustomers lets production talk to customers without TLS.
	AllowPlaintextCustomers bool
	// AllowCustomersWithoutClientCert lets production talk to customers over TLS without
	// presenting a client certificate.
	AllowCustomersWithoutClientCert bool
}

// DevPageTokenSecret signs page tokens when CART_PAGE_TOKEN_SECRET is unset in development.
// It is public, so production refuses it.
const DevPageTokenSecret = "insecure-development-page-token-secret"

// Load reads the configuration with r, which collects every invalid variable.
func Load(r *envconf.Reader, s service.Settings) Config {
	c := Config{
		MaxQuantity:      int32(r.Int("CART_MAX_QUANTITY", 99, 1, 10000)), //nolint:gosec // bounded to 10000 just before
		PageTokenSecret:  r.Secret("CART_PAGE_TOKEN_SECRET", DevPageTokenSecret, s.Production()),
		CustomersAddr:    r.String("CART_CUSTOMERS_ADDR", "localhost:50051"),
		CustomersTimeout: r.Duration("CART_CUSTOMERS_TIMEOUT", 2*time.Second),
		CustomersTLS: tlsconfig.ClientFiles{
			CA:         r.String("CART_CUSTOMERS_TLS_CA", ""),
			Cert:       r.String("CART_CUSTOMERS_TLS_CERT", ""),
			Key:        r.String("CART_CUSTOMERS_TLS_KEY", ""),
			ServerName: r.String("CART_CUSTOMERS_TLS_SERVER_NAME", ""),
		},
		AllowPlaintextCustomers:         r.Bool("CART_ALLOW_PLAINTEXT_CUSTOMERS", false),
		AllowCustomersWithoutClientCert: r.Bool("CART_ALLOW_CUSTOMERS_WITHOUT_CLIENT_CERT", false),
	}
	t := c.CustomersTLS
	if !t.Enabled() && (t.Cert != "" || t.Key != "") {
		r.Fail("CART_CUSTOMERS_TLS_CA", "is required when a client certificate is configured")
	}
	if (t.Cert == "") != (t.Key == "") {
		r.Fail("CART_CUSTOMERS_TLS_KEY", "CART_CUSTOMERS_TLS_CERT and CART_CUSTOMERS_TLS_KEY go together")
	}
	if s.Production() && !t.Enabled() && !c.AllowPlaintextCustomers {
		r.Fail("CART_CUSTOMERS_TLS_CA", "production talks to customers over TLS: set CART_CUSTOMERS_TLS_CA (and a client certificate), or CART_ALLOW_PLAINTEXT_CUSTOMERS=true on a trusted network")
	}
	// Production customers requires mutual TLS pinned to cart's certificate, so cart without one
	// would fail on its first call rather than at start-up.
	if s.Production() && t.Enabled() && t.Cert == "" && !c.AllowCustomersWithoutClientCert {
		r.Fail("CART_CUSTOMERS_TLS_CERT", "production talks to customers over mutual TLS: set CART_CUSTOMERS_TLS_CERT and CART_CUSTOMERS_TLS_KEY, or CART_ALLOW_CUSTOMERS_WITHOUT_CLIENT_CERT=true for a customers that does not ask for one")
	}
	return c
}

// LogValue lets the configuration be logged at start-up; the secret logs as [REDACTED].
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("max_quantity", int(c.MaxQuantity)),
		slog.Any("page_token_secret", c.PageTokenSecret),
		slog.String("customers_addr", c.CustomersAddr),
		slog.Duration("customers_timeout", c.CustomersTimeout),
		slog.Bool("customers_tls", c.CustomersTLS.Enabled()),
		slog.Bool("customers_client_cert", c.CustomersTLS.Cert != ""),
	)
}
