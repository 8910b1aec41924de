package service

import (
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/tlsconfig"
)

// Settings are what every service is configured with. The process-wide ones (APP_ENV,
// LOG_LEVEL, LOG_FORMAT, SHUTDOWN_TIMEOUT, SHUTDOWN_DRAIN_DELAY) have no prefix; the rest are
// read under the service's own (CUSTOMERS_HTTP_ADDR, CART_DATABASE_URL).
type Settings struct {
	// Name is the service's name, as in Spec.
	Name string
	// Env is "development" or "production" (the default); production refuses unsafe settings,
	// so that a binary started without configuration is never the development one (demo
	// accounts, the public development secrets, plaintext gRPC).
	Env string
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel, LogFormat string
	// HTTPAddr is where the REST gateway, Swagger UI and the health endpoints listen.
	HTTPAddr string
	// GRPCAddr is where the gRPC server listens.
	GRPCAddr string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the REST gateway believes,
	// and only for connections from them (gateway.Config.TrustedProxies).
	TrustedProxies []netip.Prefix
	// CORSOrigins are the web origins whose pages may call the REST API from a browser.
	CORSOrigins []string
	// MetricsAddr, when set, serves Prometheus metrics at /metrics there, never on the REST
	// port.
	MetricsAddr string
	// DebugAddr, when set, serves pprof profiles there. It must be a loopback address unless
	// DebugAllowNonLoopback is set: profiles reveal internals, and a CPU profile or trace costs
	// the service work on demand.
	DebugAddr string
	// DebugAllowNonLoopback lets DebugAddr listen beyond loopback (a pod's address that only
	// a port-forward reaches, say).
	DebugAllowNonLoopback bool
	// Database is the PostgreSQL DSN, or the embedded SQLite file when the DSN is empty, and
	// the pool size.
	Database database.Config
	// DemoData adds the demo rows of the API contract (development only).
	DemoData bool
	// MigrateOnStart applies the migrations when the service starts. Off, as on Kubernetes
	// where a Job runs `migrate` once before the replicas roll, the service refuses to start
	// while a migration is pending.
	MigrateOnStart bool
	// GRPCMaxConnectionAge closes each client connection after about this long (with a grace
	// period for the calls in flight), so that clients balancing over several replicas
	// re-resolve their names and spread over replicas added since.
	GRPCMaxConnectionAge time.Duration
	// GRPCTLS, when Cert and Key are set, serves gRPC over TLS; with ClientCA, clients must
	// present a certificate signed by it (mutual TLS), and with ClientNames, one that names one
	// of them.
	GRPCTLS tlsconfig.ServerFiles
	// AllowPlaintextGRPC lets production serve gRPC without TLS, on a network that protects it.
	AllowPlaintextGRPC bool
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// DrainDelay is how long a stopping service keeps serving after it reports not ready.
	DrainDelay time.Duration
}

// Production reports whether the service runs in production mode.
func (s Settings) Production() bool { return s.Env == "production" }

// Var returns the name of the service's variable for setting: "HTTP_ADDR" → "CART_HTTP_ADDR".
func (s Settings) Var(setting string) string { return strings.ToUpper(s.Name) + "_" + setting }

// loadSettings reads the shared settings of the service called name with r.
func loadSettings(r *envconf.Reader, name, httpAddr, grpcAddr, metricsAddr string, mutualTLS bool) Settings {
	s := Settings{
		Name:            name,
		Env:             r.OneOf("APP_ENV", "production", "development", "production"),
		LogLevel:        r.OneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:       r.OneOf("LOG_FORMAT", "text", "text", "json"),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		DrainDelay:      r.DelayDuration("SHUTDOWN_DRAIN_DELAY", 0),
	}
	v := s.Var
	s.HTTPAddr = r.String(v("HTTP_ADDR"), httpAddr)
	s.GRPCAddr = r.String(v("GRPC_ADDR"), grpcAddr)
	s.MetricsAddr = r.Switchable(v("METRICS_ADDR"), metricsAddr)
	s.CORSOrigins = r.Origins(v("CORS_ALLOWED_ORIGINS"))
	s.TrustedProxies = r.Prefixes(v("TRUSTED_PROXIES"))
	s.DebugAddr = r.String(v("DEBUG_ADDR"), "")
	s.DebugAllowNonLoopback = r.Bool(v("DEBUG_ALLOW_NON_LOOPBACK"), false)
	if s.DebugAddr != "" && !s.DebugAllowNonLoopback && !loopback(s.DebugAddr) {
		r.Fail(v("DEBUG_ADDR"), "must be a loopback address such as 127.0.0.1:6060 (profiles reveal internals), or set %s=true", v("DEBUG_ALLOW_NON_LOOPBACK"))
	}
	s.Database = database.Config{
		DSN:          r.String(v("DATABASE_URL"), ""),
		SQLitePath:   r.String(v("SQLITE_PATH"), "data/"+name+".db"),
		MaxOpenConns: r.Int(v("DB_MAX_CONNS"), 10, 1, 1000),
	}
	if dsn := s.Database.DSN; dsn != "" {
		if u, err := url.Parse(dsn); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.Fail(v("DATABASE_URL"), "want a postgres:// URL")
		}
	}
	// Demo data and plaintext gRPC are conveniences of development; production must opt out
	// of neither by accident, so it refuses them rather than defaulting around them.
	s.DemoData = r.Bool(v("DEMO_DATA"), !s.Production())
	s.MigrateOnStart = r.Bool(v("MIGRATE_ON_START"), true)
	if s.DemoData && s.Production() {
		r.Fail(v("DEMO_DATA"), "must be false in production: demo accounts have a published password")
	}
	s.GRPCTLS = tlsconfig.ServerFiles{
		Cert:     r.String(v("GRPC_TLS_CERT"), ""),
		Key:      r.String(v("GRPC_TLS_KEY"), ""),
		ClientCA: r.String(v("GRPC_TLS_CLIENT_CA"), ""),
	}
	for n := range strings.SplitSeq(r.String(v("GRPC_TLS_CLIENT_NAMES"), ""), ",") {
		if n = strings.TrimSpace(n); n != "" {
			s.GRPCTLS.ClientNames = append(s.GRPCTLS.ClientNames, n)
		}
	}
	s.AllowPlaintextGRPC = r.Bool(v("ALLOW_PLAINTEXT_GRPC"), false)
	s.GRPCMaxConnectionAge = r.Duration(v("GRPC_MAX_CONNECTION_AGE"), 2*time.Minute)
	if (s.GRPCTLS.Cert == "") != (s.GRPCTLS.Key == "") {
		r.Fail(v("GRPC_TLS_KEY"), "%s and %s go together", v("GRPC_TLS_CERT"), v("GRPC_TLS_KEY"))
	}
	if s.GRPCTLS.ClientCA != "" && !s.GRPCTLS.Enabled() {
		r.Fail(v("GRPC_TLS_CERT"), "is required when %s is set", v("GRPC_TLS_CLIENT_CA"))
	}
	if len(s.GRPCTLS.ClientNames) > 0 && s.GRPCTLS.ClientCA == "" {
		r.Fail(v("GRPC_TLS_CLIENT_CA"), "is required when %s is set", v("GRPC_TLS_CLIENT_NAMES"))
	}
	// Only other services call a service-to-service port: production lets in only the
	// certificates of those named, not every certificate of the CA.
	if mutualTLS && s.Production() && s.GRPCTLS.Enabled() && (s.GRPCTLS.ClientCA == "" || len(s.GRPCTLS.ClientNames) == 0) {
		r.Fail(v("GRPC_TLS_CLIENT_NAMES"), "production requires mutual TLS on this port: set %s and %s (the identities of the services that call it, such as cart)",
			v("GRPC_TLS_CLIENT_CA"), v("GRPC_TLS_CLIENT_NAMES"))
	}
	if s.Production() && !s.GRPCTLS.Enabled() && !s.AllowPlaintextGRPC {
		r.Fail(v("GRPC_TLS_CERT"), "production serves gRPC over TLS: set %s and %s (and %s for mutual TLS), or %s=true on a trusted network",
			v("GRPC_TLS_CERT"), v("GRPC_TLS_KEY"), v("GRPC_TLS_CLIENT_CA"), v("ALLOW_PLAINTEXT_GRPC"))
	}
	return s
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

// LogValue lets the settings be logged at start-up; the DSN's password is redacted.
func (s Settings) LogValue() slog.Value {
	db := "sqlite:" + s.Database.SQLitePath
	if s.Database.DSN != "" {
		db = "(unparsable)"
		if u, err := url.Parse(s.Database.DSN); err == nil {
			db = u.Redacted()
		}
	}
	return slog.GroupValue(
		slog.String("env", s.Env),
		slog.String("http_addr", s.HTTPAddr),
		slog.String("grpc_addr", s.GRPCAddr),
		slog.String("metrics_addr", s.MetricsAddr),
		slog.Any("cors_allowed_origins", s.CORSOrigins),
		slog.Any("trusted_proxies", s.TrustedProxies),
		slog.String("db", db),
		slog.Bool("demo_data", s.DemoData),
		slog.Bool("migrate_on_start", s.MigrateOnStart),
		slog.Bool("grpc_tls", s.GRPCTLS.Enabled()),
		slog.Bool("grpc_mutual_tls", s.GRPCTLS.ClientCA != ""),
		slog.Any("grpc_tls_client_names", s.GRPCTLS.ClientNames),
		slog.Duration("grpc_max_connection_age", s.GRPCMaxConnectionAge),
		slog.Duration("shutdown_timeout", s.ShutdownTimeout),
	)
}
