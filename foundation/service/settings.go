package service

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/tlsconfig"
)

// Common are the settings both services read, without a prefix.
type Common struct {
	// Env is "development" or "production" (the default); production refuses unsafe settings,
	// so that a binary started without configuration is never the development one (demo
	// accounts, the public development secrets, plaintext gRPC).
	Env string `env:"APP_ENV" default:"production" example:"development" oneof:"development,production" help:"development or production. Production refuses unsafe settings (demo data, the public development secrets, plaintext gRPC unless allowed); make run and the tests set development."`
	// LogLevel and LogFormat shape the log.
	LogLevel  string `env:"LOG_LEVEL" default:"info" oneof:"debug,info,warn,error" help:"The least severe level logged."`
	LogFormat string `env:"LOG_FORMAT" default:"text" oneof:"text,json" help:"text (for people) or json (for log collectors)."`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"10s" help:"How long a stopping service waits for the requests in flight before cutting them off."`
	// TLSReloadInterval is how often the TLS files are read again (tlsconfig.Watcher).
	TLSReloadInterval time.Duration `env:"TLS_RELOAD_INTERVAL" default:"30s" min:"1s" help:"How often the services read their TLS certificate, key and CA files again; changed files that are valid replace the ones in use for new connections, so renewed certificates need no restart."`
	// DrainDelay is how long a stopping service keeps serving after it reports not ready.
	DrainDelay time.Duration `env:"SHUTDOWN_DRAIN_DELAY" default:"0s" min:"0s" help:"How long a stopping service keeps serving after it starts reporting not ready (/readyz 503, gRPC health NOT_SERVING), so that load balancers stop routing to it first: a little more than the readiness probe's period on Kubernetes."`
	// GoMemLimit and OTLPEndpoint are read by the Go runtime and the OpenTelemetry SDK
	// themselves; they are declared here to be listed with the rest.
	GoMemLimit   string `env:"GOMEMLIMIT" help:"The Go runtime's soft memory limit (read by the runtime), such as 48MiB: keep it below the container's memory limit. Empty: no limit."`
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"Export spans with OTLP to this endpoint, such as http://localhost:4318; the other standard OTEL_* variables of the OpenTelemetry SDK apply. Empty: no span is exported (trace ids still reach the log lines)."`
}

// Production reports whether the service runs in production mode: any APP_ENV but
// development, so that a misspelt one refuses what only development allows.
func (c Common) Production() bool { return c.Env != "development" }

// Settings are what every service is configured with: Common, and the rest under the
// service's own prefix (CUSTOMERS_HTTP_ADDR, CART_DATABASE_URL).
type Settings struct {
	Common `env:"-"`
	// Name is the service's name, as in Spec.
	Name string `env:"-"`
	// HTTPAddr, GRPCAddr and MetricsAddr default to the Spec's addresses.
	HTTPAddr    string `env:"HTTP_ADDR" help:"Where the REST gateway, Swagger UI, /healthz and /readyz listen."`
	GRPCAddr    string `env:"GRPC_ADDR" help:"Where the gRPC server listens."`
	MetricsAddr string `env:"METRICS_ADDR" empty:"off" help:"Where Prometheus metrics are served at /metrics (OpenMetrics with trace_id exemplars), never on the REST port, so that a public ingress does not publish them."`
	// CORSOrigins are the web origins whose pages may call the REST API from a browser.
	CORSOrigins envconf.Origins `env:"CORS_ALLOWED_ORIGINS" help:"Comma-separated web origins whose pages may call the REST API from a browser (CORS), each exactly scheme://host[:port] (no wildcard), such as https://shop.example,http://localhost:3000; production allows only https:// ones. * allows any origin (development only). Empty: no CORS headers."`
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the REST gateway believes,
	// and only for connections from them (gateway.Config.TrustedProxies).
	TrustedProxies envconf.Prefixes `env:"TRUSTED_PROXIES" help:"Comma-separated CIDRs or addresses of the reverse proxies whose X-Forwarded-For is believed, for the REST requests that come from them. Empty: the client is always the connection's address."`
	// ClientIPv6Prefix is the network every per-address limit counts an IPv6 client as
	// (clientnet.Key).
	ClientIPv6Prefix int `env:"CLIENT_IPV6_PREFIX" default:"64" min:"32" max:"64" help:"Prefix length of the network that every per-address limit (failed logins, registrations, requests in flight, streams) counts an IPv6 client as: 64, or 56 or 48 where each client is given a /56 or a /48. An IPv4 address is one client."`
	// DebugAddr, when set, serves pprof profiles there. It must be a loopback address unless
	// DebugAllowNonLoopback is set: profiles reveal internals, and a CPU profile or trace costs
	// the service work on demand.
	DebugAddr             string `env:"DEBUG_ADDR" help:"Serve pprof profiles on this address, such as 127.0.0.1:6061; a loopback address unless DEBUG_ALLOW_NON_LOOPBACK is true. Empty: off."`
	DebugAllowNonLoopback bool   `env:"DEBUG_ALLOW_NON_LOOPBACK" default:"false" help:"Let DEBUG_ADDR listen beyond loopback (a pod's address that only a port-forward reaches, say)."`
	// DatabaseURL is the PostgreSQL DSN; empty, the service runs on the SQLite file at
	// SQLitePath.
	DatabaseURL secret.URL `env:"DATABASE_URL" help:"PostgreSQL DSN, such as postgres://user:password@localhost:5432/db?sslmode=disable. Empty: the embedded SQLite file SQLITE_PATH."`
	// DatabasePassword is the password of DatabaseURL's user, taken as is: it may hold any
	// character, which a URL would need escaped.
	DatabasePassword secret.Password `env:"DATABASE_PASSWORD" help:"The password of DATABASE_URL's user, as is, with no URL escaping (any character works); it replaces a password in the URL. Keep the URL without one and this in a Secret."`
	SQLitePath       string          `env:"SQLITE_PATH" help:"The embedded SQLite database file, used when DATABASE_URL is empty."`
	DBMaxConns       int             `env:"DB_MAX_CONNS" default:"10" min:"1" max:"1000" help:"Largest number of open PostgreSQL connections of one replica: replicas times this is what PostgreSQL (or PgBouncer) must accept."`
	// DemoData adds the demo rows of the API contract (development only).
	DemoData bool `env:"DEMO_DATA" default:"false" dev:"true" help:"Add the demo data of the API contract (the demo users, password testPass123; the demo catalog and carts)."`
	// MigrateOnStart applies the migrations when the service starts. Off, as on Kubernetes
	// where each pod's init container runs `migrate` before the server starts, the service
	// refuses to start while a migration is pending.
	MigrateOnStart bool `env:"MIGRATE_ON_START" default:"true" help:"Apply the migrations at start-up. false where the migrate subcommand runs first (on Kubernetes, each pod's init container): the service then refuses to start while one is pending."`
	// GRPCMaxConnectionAge closes each client connection after about this long (with a grace
	// period for the calls in flight), so that clients balancing over several replicas
	// re-resolve their names and spread over replicas added since.
	GRPCMaxConnectionAge time.Duration `env:"GRPC_MAX_CONNECTION_AGE" default:"2m" help:"Close each gRPC client connection after about this long (10 s grace for the calls in flight), so that clients balancing over every replica re-resolve and reach new ones."`
	// GRPCTLS, when Cert and Key are set, serves gRPC over TLS; with ClientCA, clients must
	// present a certificate signed by it (mutual TLS), and with ClientNames, one that names one
	// of them.
	GRPCTLS tlsconfig.ServerFiles `envPrefix:"GRPC_TLS_"`
	// NATSURL is the NATS server (JetStream) that the service's events go through; empty, the
	// service publishes and consumes none (its outbox rows wait), in development only
	// (EventsURL).
	NATSURL secret.URL `env:"NATS_URL" help:"NATS server with JetStream that events between the services go through (UserDeleted: customers publishes it from its outbox, cart erases the user's data), such as nats://localhost:4222, or several comma-separated URLs of one cluster; credentials in the URL are redacted in the log. Empty: no event is published or consumed (customers' outbox keeps them until it is set), which only development allows: production refuses to serve without it; make run starts a development server and sets it."`
	// NATSStreamReplicas and NATSStreamMaxAge are the limits of the streams the service
	// creates at start-up.
	NATSStreamReplicas int           `env:"NATS_STREAM_REPLICAS" default:"1" min:"1" max:"5" help:"Servers of the JetStream cluster that keep each stream the service creates at start-up: 1 for a single development server, 3 on a three-node production cluster."`
	NATSStreamMaxAge   time.Duration `env:"NATS_STREAM_MAX_AGE" default:"168h" min:"1m" help:"How long a stream keeps an event, consumed or not: a consumer down for longer misses events, and cart-svc reconcile erases what they would have."`
	// AllowPlaintextGRPC lets production serve gRPC without TLS, on a network that protects it.
	AllowPlaintextGRPC bool `env:"ALLOW_PLAINTEXT_GRPC" default:"false" help:"Let production serve gRPC without TLS, on a network that protects it."`
}

// Var returns the name of the service's variable for setting: "HTTP_ADDR" → "CART_HTTP_ADDR".
func (s Settings) Var(setting string) string { return s.prefix() + setting }

func (s Settings) prefix() string { return strings.ToUpper(s.Name) + "_" }

// Database says which database to open.
func (s Settings) Database() database.Config {
	return database.Config{DSN: string(s.DatabaseURL), Password: string(s.DatabasePassword), SQLitePath: s.SQLitePath, MaxOpenConns: s.DBMaxConns}
}

// defaults are the settings of the service called name before they are read: the defaults
// that differ between services.
func defaults(name, httpAddr, grpcAddr, metricsAddr string) Settings {
	return Settings{Name: name, HTTPAddr: httpAddr, GRPCAddr: grpcAddr, MetricsAddr: metricsAddr, SQLitePath: "data/" + name + ".db"}
}

// check reports the rules across the shared settings that the declarations cannot say;
// mutualTLS is Spec.MutualTLS.
func (s Settings) check(mutualTLS bool) error {
	var errs []error
	v := s.Var
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if s.DebugAddr != "" && !s.DebugAllowNonLoopback && !loopback(s.DebugAddr) {
		fail(v("DEBUG_ADDR"), "must be a loopback address such as 127.0.0.1:6060 (profiles reveal internals), or set %s=true", v("DEBUG_ALLOW_NON_LOOPBACK"))
	}
	if s.Production() {
		// An allowed origin's pages hold users' tokens: a page fetched over plain HTTP can be
		// rewritten on the way, and "*" lets in pages of any origin, http:// ones included.
		var plain []string
		for _, o := range s.CORSOrigins {
			if !strings.HasPrefix(o, "https://") {
				plain = append(plain, o)
			}
		}
		if len(plain) > 0 {
			fail(v("CORS_ALLOWED_ORIGINS"), "production allows only https:// origins, each listed exactly; not %s", strings.Join(plain, ", "))
		}
	}
	if dsn := string(s.DatabaseURL); dsn != "" {
		if u, err := url.Parse(dsn); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			fail(v("DATABASE_URL"), "want a postgres:// URL")
		} else if s.DatabasePassword != "" && u.User.Username() == "" {
			fail(v("DATABASE_PASSWORD"), "%s names no user for it (postgres://user@host/db)", v("DATABASE_URL"))
		}
	} else if s.DatabasePassword != "" {
		fail(v("DATABASE_PASSWORD"), "is set without %s", v("DATABASE_URL"))
	}
	t := s.GRPCTLS
	if (t.Cert == "") != (t.Key == "") {
		fail(v("GRPC_TLS_KEY"), "%s and %s go together", v("GRPC_TLS_CERT"), v("GRPC_TLS_KEY"))
	}
	if t.ClientCA != "" && !t.Enabled() {
		fail(v("GRPC_TLS_CERT"), "is required when %s is set", v("GRPC_TLS_CLIENT_CA"))
	}
	if len(t.ClientNames) > 0 && t.ClientCA == "" {
		fail(v("GRPC_TLS_CLIENT_CA"), "is required when %s is set", v("GRPC_TLS_CLIENT_NAMES"))
	}
	// Only other services call a service-to-service port: production lets in only the
	// certificates of those named, not every certificate of the CA.
	if mutualTLS && s.Production() && t.Enabled() && (t.ClientCA == "" || len(t.ClientNames) == 0) {
		fail(v("GRPC_TLS_CLIENT_NAMES"), "production requires mutual TLS on this port: set %s and %s (the identities of the services that call it, such as cart)",
			v("GRPC_TLS_CLIENT_CA"), v("GRPC_TLS_CLIENT_NAMES"))
	}
	if s.Production() && !t.Enabled() && !s.AllowPlaintextGRPC {
		fail(v("GRPC_TLS_CERT"), "production serves gRPC over TLS: set %s and %s (and %s for mutual TLS), or %s=true on a trusted network",
			v("GRPC_TLS_CERT"), v("GRPC_TLS_KEY"), v("GRPC_TLS_CLIENT_CA"), v("ALLOW_PLAINTEXT_GRPC"))
	}
	return errors.Join(errs...)
}

// EventsURL returns NATSURL for a serving replica: empty in development when none is set (no
// event is published or consumed), and an error naming the variable in production, where a
// replica without it would leave deleted users' carts in place. It is not a rule of check:
// migrate and the other subcommands run without NATS.
func (s Settings) EventsURL() (string, error) {
	if s.NATSURL == "" && s.Production() {
		return "", fmt.Errorf("%s: production serves only with the NATS server (JetStream) that user deletions reach cart through; set it, such as nats://nats:4222", s.Var("NATS_URL"))
	}
	return string(s.NATSURL), nil
}

// loopback reports whether addr (host:port) listens on the loopback interface only: an empty
// host listens on every interface, and a name other than localhost may resolve anywhere.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// LogValue lets the settings be logged at start-up: the DSN's password is redacted.
func (s Settings) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("common", envconf.LogValue(&s.Common, "")),
		slog.Any(s.Name, envconf.LogValue(&s, s.prefix())),
	)
}
