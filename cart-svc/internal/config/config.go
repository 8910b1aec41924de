// Package config declares the cart service's own settings, read under the prefix CART_; the
// settings every service shares (addresses, database, logging, TLS, shutdown) are
// foundation/service's. `cart-svc settings`, .env.example and docs/configuration.md list them
// all, from these declarations.
package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/tlsconfig"
)

// Config is the cart service's own configuration; each field's tags declare its variable
// (package envconf).
type Config struct {
	// MaxQuantity is the largest quantity of one cart line.
	MaxQuantity int32 `env:"MAX_QUANTITY" default:"99" min:"1" max:"10000" help:"Largest quantity of one cart line."`
	// IdempotencyMaxKeys caps each user's live Idempotency-Keys.
	IdempotencyMaxKeys int `env:"IDEMPOTENCY_MAX_KEYS_PER_USER" default:"1000" min:"1" max:"1000000" help:"Idempotency-Keys one user may have live (each is kept 24 hours); a request with a new key beyond them is a 429 with Retry-After, when the user's oldest key expires. No key is evicted, so every answer can be replayed for its 24 hours."`
	// WriteLimit and WriteWindow limit each user's calls that change something, across replicas.
	WriteLimit  int           `env:"WRITE_LIMIT_PER_USER" default:"120" min:"1" max:"1000000" help:"Calls that change something (adding to, changing, removing from or clearing a cart; creating, changing or deleting a product) one user may make in each window, counted in the database so that the limit holds across replicas; beyond it a call is a 429 with Retry-After."`
	WriteWindow time.Duration `env:"WRITE_LIMIT_WINDOW" default:"1m" min:"1s" help:"The window of CART_WRITE_LIMIT_PER_USER; it starts at the user's first call that changes something."`
	// SweepInterval is how often expired Idempotency-Keys, closed write windows and old
	// handled events are deleted.
	SweepInterval time.Duration `env:"SWEEP_INTERVAL" default:"1m" min:"1s" help:"How often expired Idempotency-Keys, closed write-limit windows and the ids of events handled longer than CART_HANDLED_EVENTS_RETENTION ago are deleted, in batches, by one replica at a time."`
	// HandledEventsRetention is how long the id of an applied event is kept to recognise a
	// repeat delivery of it.
	HandledEventsRetention time.Duration `env:"HANDLED_EVENTS_RETENTION" default:"168h" min:"1h" help:"How long the id of an applied UserDeleted event is kept, so that a repeat delivery of it changes nothing and counts as a duplicate; older ids are deleted every CART_SWEEP_INTERVAL. A repeat comes within minutes of the first delivery; one after this would erase the user again, finding nothing left."`
	// ReconcileInterval is how often one replica erases the carts of users customers no longer
	// has (cart-svc reconcile).
	ReconcileInterval time.Duration `env:"RECONCILE_INTERVAL" default:"1h" min:"1m" help:"How often one replica at a time erases the carts of users that customers says do not exist, as cart-svc reconcile does once: the safety net behind the UserDeleted events."`
	// PageTokenSecret signs the product list's page tokens.
	PageTokenSecret secret.Value `env:"PAGE_TOKEN_SECRET" dev:"insecure-development-page-token-secret" help:"Secret that signs the product list's page tokens, at least 32 bytes, such as the output of openssl rand -base64 48."`
	// CustomersAddr is the customers service's gRPC target: host:port, or a name such as
	// dns:///customers-grpc:50051 whose every address cart balances over.
	CustomersAddr string `env:"CUSTOMERS_ADDR" default:"localhost:50051" help:"customers' gRPC target, which validates every token over one long-lived channel: host:port, or a name whose every address cart balances over round-robin, such as dns:///customers-grpc:50051 (a headless Service on Kubernetes)."`
	// CustomersTimeout bounds each ValidateTokens call, and each validation's whole wait.
	CustomersTimeout time.Duration `env:"CUSTOMERS_TIMEOUT" default:"2s" help:"Deadline of each call to customers to validate tokens; past it the request gets 503."`
	// CustomersTLS, when CA is set, makes the link to customers TLS; with a certificate and
	// key, mutual TLS.
	CustomersTLS tlsconfig.ClientFiles `envPrefix:"CUSTOMERS_TLS_"`
	// AllowPlaintextCustomers lets production talk to customers without TLS.
	AllowPlaintextCustomers bool `env:"ALLOW_PLAINTEXT_CUSTOMERS" default:"false" help:"Let production talk to customers without TLS, on a network that protects it."`
	// AllowCustomersWithoutClientCert lets production talk to customers over TLS without
	// presenting a client certificate.
	AllowCustomersWithoutClientCert bool `env:"ALLOW_CUSTOMERS_WITHOUT_CLIENT_CERT" default:"false" help:"Let production talk to customers over TLS without a client certificate (production customers requires one)."`
}

// Check reports what is wrong across the settings of c.
func (c Config) Check(s service.Settings) error {
	var errs []error
	fail := func(name, msg string) { errs = append(errs, fmt.Errorf("%s: %s", s.Var(name), msg)) }
	t := c.CustomersTLS
	if !t.Enabled() && (t.Cert != "" || t.Key != "") {
		fail("CUSTOMERS_TLS_CA", "is required when a client certificate is configured")
	}
	if (t.Cert == "") != (t.Key == "") {
		fail("CUSTOMERS_TLS_KEY", "CART_CUSTOMERS_TLS_CERT and CART_CUSTOMERS_TLS_KEY go together")
	}
	if s.Production() && !t.Enabled() && !c.AllowPlaintextCustomers {
		fail("CUSTOMERS_TLS_CA", "production talks to customers over TLS: set CART_CUSTOMERS_TLS_CA (and a client certificate), or CART_ALLOW_PLAINTEXT_CUSTOMERS=true on a trusted network")
	}
	// Production customers requires mutual TLS pinned to cart's certificate, so cart without one
	// would fail on its first call rather than at start-up.
	if s.Production() && t.Enabled() && t.Cert == "" && !c.AllowCustomersWithoutClientCert {
		fail("CUSTOMERS_TLS_CERT", "production talks to customers over mutual TLS: set CART_CUSTOMERS_TLS_CERT and CART_CUSTOMERS_TLS_KEY, or CART_ALLOW_CUSTOMERS_WITHOUT_CLIENT_CERT=true for a customers that does not ask for one")
	}
	return errors.Join(errs...)
}
