// Package service runs a service binary from its parts. What every service does at start-up and
// shutdown lives here once: the subcommands, signals, the shared settings, the logger, the
// debug server, the database and its migrations, the gRPC server with its interceptor chain,
// the REST gateway, and the graceful shutdown. A service's main says only what is its own: its
// settings, migrations and gRPC services (Spec).
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/access"
	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/serve"
	"github.com/acme/shop/foundation/telemetry"
	"github.com/acme/shop/foundation/tlsconfig"
)

// Spec is what makes a service itself; Run does the rest.
type Spec[C any] struct {
	// Name is the service's name, "customers": it prefixes the service's variables
	// (CUSTOMERS_HTTP_ADDR), names its SQLite file and its Swagger UI, and is the `service`
	// attribute of its log lines.
	Name string
	// HTTPAddr, GRPCAddr and MetricsAddr are the default listen addresses.
	HTTPAddr, GRPCAddr, MetricsAddr string
	// MutualTLS marks a gRPC port that only other services call (customers', which cart
	// calls): production serving it over TLS requires client certificates, pinned to the
	// callers' names (<SVC>_GRPC_TLS_CLIENT_CA, <SVC>_GRPC_TLS_CLIENT_NAMES).
	MutualTLS bool
	// Check, when set, reports what is wrong across the service's own settings beyond what
	// their declarations say: C's fields declare them (package envconf), under the service's
	// prefix.
	Check func(c C, s Settings) error
	// Migrations lists the service's migrations, with the demo data when demo is true.
	Migrations func(demo bool) []*gormigrate.Migration
	// DemoRows names the rows the demo data migrations create, by table, with their fixed
	// IDs: production refuses to serve a database that holds any of them.
	DemoRows map[string][]string
	// OpenAPI is the document Swagger UI shows.
	OpenAPI []byte
	// Build makes the service's parts once its database is open and migrated.
	Build func(ctx context.Context, d Deps[C]) (Parts, error)
	// Tasks are the service's own subcommands, by name (cart's reconcile): each runs once, on
	// the service's migrated database, and exits.
	Tasks map[string]Task[C]
}

// Task is a subcommand of a service's own.
type Task[C any] struct {
	// Help says what it does, in the usage text.
	Help string
	// Run does it.
	Run func(ctx context.Context, d Deps[C]) error
}

// Deps are what Build makes the parts from.
type Deps[C any] struct {
	Settings Settings
	Config   C
	DB       *gorm.DB
	Log      *slog.Logger
	// Telemetry holds the metrics registry the service's own collectors join
	// (Telemetry.Register), and the client options of its connections to other services
	// (Telemetry.ClientOptions).
	Telemetry *telemetry.Telemetry
	// Certificates make the TLS credentials of the service's clients (Watcher.Client), which
	// follow their files as the server's do.
	Certificates *tlsconfig.Watcher
}

// Parts are a service's own pieces of its gRPC server and REST gateway.
type Parts struct {
	// Register registers the service's gRPC services.
	Register func(grpc.ServiceRegistrar)
	// REST lists the REST facades of those services (gateway.Service).
	REST []gateway.RegisterFunc
	// Auth authenticates calls (grpcserver.Options.Auth).
	Auth grpc.UnaryServerInterceptor
	// Idempotency, when set, runs around the handlers of the RPCs that take an Idempotency-Key
	// (grpcserver.Options.Idempotency; idempotency.Interceptor).
	Idempotency grpc.UnaryServerInterceptor
	// RateLimit, when set, runs before Idempotency and may refuse a call before it holds a key
	// (grpcserver.Options.RateLimit; grpcserver.LimitWrites).
	RateLimit grpc.UnaryServerInterceptor
	// Errors maps the service's domain errors to statuses (grpcserver.Options.Errors).
	Errors func(context.Context, error) *status.Status
	// Dependencies are other services that some calls need: /readyz reports and logs their
	// state but stays ready without them (gateway.Config.Dependencies).
	Dependencies map[string]func(ctx context.Context) error
	// Background are loops the service runs beside its servers (sweeps, say): each in its own
	// goroutine, its context ended when the servers have stopped, and waited for.
	Background []func(ctx context.Context)
	// Collectors are the service's own metrics, served with the others at /metrics.
	Collectors []prometheus.Collector
	// Close, when set, runs after the servers stopped (a client connection, say).
	Close func() error
}

// Process is what a running service gets from its surroundings: os.LookupEnv and os.Stdout
// in main, a map (envconf.Map) and a buffer in tests.
type Process struct {
	// LookupEnv reads the environment; a variable set to the empty string is set (an empty
	// <SVC>_METRICS_ADDR switches metrics off).
	LookupEnv envconf.Lookup
	// Stdout receives the log.
	Stdout io.Writer
	// Listening, when set, is called with the servers' addresses once they listen (tests
	// listen on port 0 and learn the ports here).
	Listening func(Addrs)
	// Spans, when set, receives every span, whatever the OTEL_* variables say: tests record
	// spans in memory with it.
	Spans sdktrace.SpanProcessor
}

// Addrs are the addresses a running service listens on; Metrics is empty when metrics are
// off.
type Addrs struct {
	HTTP, GRPC, Metrics string
}

// Main runs the subcommand of os.Args until SIGINT or SIGTERM and exits with its status.
func Main[C any](spec Spec[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Command(ctx, spec, os.Args[1:], Process{LookupEnv: os.LookupEnv, Stdout: os.Stdout})
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(1)
	}
}

// Usage lists the subcommands.
const Usage = `subcommands:
  serve        run the service (the default)
  migrate      apply the database migrations and exit
  healthcheck  exit 0 when the service running on this host is ready (container health checks)
  settings     list every environment variable the service reads, with its default
  version      print the build's version`

// Command runs one subcommand, args being the command line after the program name.
func Command[C any](ctx context.Context, spec Spec[C], args []string, p Process) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if len(args) > 1 {
		return fmt.Errorf("%s takes no arguments\n%s", cmd, usage(spec))
	}
	switch cmd {
	case "serve":
		return Run(ctx, spec, p)
	case "migrate":
		s, _, log, err := load(spec, p)
		if err != nil {
			return err
		}
		db, err := openMigrated(ctx, spec, s, log)
		if err != nil {
			return err
		}
		return database.Close(db)
	case "healthcheck":
		s, _, err := Load(spec, p.LookupEnv)
		if err != nil {
			return err
		}
		return serve.Probe(ctx, s.HTTPAddr)
	case "version":
		_, err := fmt.Fprintln(p.Stdout, spec.Name, Version())
		return err
	case "settings":
		common, shared, own, err := Declared(spec)
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(p.Stdout, envconf.EnvFile(slices.Concat(common, shared, own)))
		return err
	default:
		task, ok := spec.Tasks[cmd]
		if !ok {
			return fmt.Errorf("unknown subcommand %q\n%s", cmd, usage(spec))
		}
		return runTask(ctx, spec, task, p)
	}
}

// usage is Usage with the service's own tasks.
func usage[C any](spec Spec[C]) string {
	u := Usage
	for _, name := range slices.Sorted(maps.Keys(spec.Tasks)) {
		u += fmt.Sprintf("\n  %-12s %s", name, spec.Tasks[name].Help)
	}
	return u
}

// startTelemetry sets up the service's metrics and traces, and returns the function that
// flushes and ends them (within 5 s, even once ctx has ended).
func startTelemetry(ctx context.Context, s Settings, p Process) (*telemetry.Telemetry, func(), error) {
	tel, err := telemetry.New(ctx, telemetry.Options{Name: s.Name, Version: Version(), Getenv: p.LookupEnv.Get, SpanProcessor: p.Spans})
	if err != nil {
		return nil, nil, err
	}
	return tel, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}, nil
}

// runTask runs one of the service's own tasks on its database, which must be migrated.
func runTask[C any](ctx context.Context, spec Spec[C], task Task[C], p Process) error {
	s, cfg, log, err := load(spec, p)
	if err != nil {
		return err
	}
	tel, shutdown, err := startTelemetry(ctx, s, p)
	if err != nil {
		return err
	}
	defer shutdown()
	db, err := openServing(ctx, spec, s, log)
	if err != nil {
		return err
	}
	defer func() { _ = database.Close(db) }()
	return task.Run(ctx, Deps[C]{Settings: s, Config: cfg, DB: db, Log: log, Telemetry: tel, Certificates: tlsconfig.NewWatcher(log)})
}

// Version is the build's module version and VCS revision, as the Go toolchain recorded them.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

// Run serves the service until ctx is cancelled and the servers have shut down.
func Run[C any](ctx context.Context, spec Spec[C], p Process) error {
	s, cfg, log, err := load(spec, p)
	if err != nil {
		return err
	}
	if s.DebugAddr != "" {
		if err := serve.Debug(ctx, s.DebugAddr, log); err != nil {
			return err
		}
	}
	tel, shutdown, err := startTelemetry(ctx, s, p)
	if err != nil {
		return err
	}
	defer shutdown()
	discarded := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "database_connections_discarded_total",
		Help: "PostgreSQL connections the pool closed after an error that makes them useless, by reason: read_only (a write reached a standby: a switchover or failover happened under this connection), admin_shutdown (the server is stopping), connection_exception, fatal. A burst is a failover the service went through by itself.",
	}, []string{"reason"})
	if err := tel.Register(discarded); err != nil {
		return err
	}
	dbOpts := []database.Option{database.OnDiscard(func(reason string) { discarded.WithLabelValues(reason).Inc() })}
	if tp := tel.TracerProvider(); tp != nil {
		dbOpts = append(dbOpts, database.WithTracing(tp))
	}
	db, err := openServingChecked(ctx, spec, s, log, dbOpts...)
	if err != nil {
		return err
	}
	defer func() { _ = database.Close(db) }()
	if sqlDB, err := db.DB(); err == nil {
		if err := tel.Register(collectors.NewDBStatsCollector(sqlDB, s.Name)); err != nil {
			return err
		}
	}

	// Every TLS configuration follows its files, so that renewed certificates are used without
	// a restart.
	certs := tlsconfig.NewWatcher(log)
	parts, err := spec.Build(ctx, Deps[C]{Settings: s, Config: cfg, DB: db, Log: log, Telemetry: tel, Certificates: certs})
	if err != nil {
		return err
	}
	if parts.Close != nil {
		defer func() { _ = parts.Close() }()
	}
	reloadTLS := Every(s.TLSReloadInterval, log, "reloading TLS files", func(context.Context) error {
		certs.Reload(time.Now())
		return nil
	})
	defer runBackground(append(parts.Background, reloadTLS))()
	if err := tel.Register(append(parts.Collectors, certs)...); err != nil {
		return err
	}
	// Building may allocate much for a moment (customers hashes a dummy password with 19 MiB
	// of argon2id memory); hand that back to the OS now rather than carry it as resident size.
	debug.FreeOSMemory()

	var serverOpts []grpc.ServerOption
	serverTLS, err := certs.Server("grpc_server", s.GRPCTLS)
	if err != nil {
		return err
	}
	if serverTLS != nil {
		serverOpts = append(serverOpts, grpc.Creds(serverTLS))
	}
	srv, err := grpcserver.New(grpcserver.Options{
		Logger: log, Auth: parts.Auth, RateLimit: parts.RateLimit, Idempotency: parts.Idempotency, Errors: parts.Errors, Unavailable: database.IsUnavailable,
		ServerOptions: serverOpts, MaxConnectionAge: s.GRPCMaxConnectionAge, Telemetry: tel,
		ClientIPv6Prefix: s.ClientIPv6Prefix,
		Internal:         func(method string) bool { return access.Of(method) == access.Internal },
	})
	if err != nil {
		return err
	}
	parts.Register(srv)
	// Every method shows in the metrics from the start, at zero, so that rates and ratios
	// over them are defined before the first call.
	tel.Server.InitializeMetrics(srv.GRPC)

	// The gateway calls the services in-process, through the same interceptors as gRPC clients.
	handler, err := gateway.New(ctx, gateway.Config{
		Title:    s.Name,
		Conn:     srv.Local,
		Register: parts.REST,
		Services: descriptors(srv.GRPC),
		OpenAPI:  spec.OpenAPI,
		// Ready while serving (not shutting down) and the database answers.
		Ready: func(ctx context.Context) error {
			return errors.Join(srv.Serving(ctx), database.Ping(ctx, db))
		},
		Dependencies:   parts.Dependencies,
		Logger:         log,
		Telemetry:      tel,
		CORSOrigins:    s.CORSOrigins,
		TrustedProxies: s.TrustedProxies,
	})
	if err != nil {
		return err
	}

	grpcLis, err := serve.Listen(ctx, s.GRPCAddr)
	if err != nil {
		return err
	}
	defer func() { _ = grpcLis.Close() }()
	httpLis, err := serve.Listen(ctx, s.HTTPAddr)
	if err != nil {
		return err
	}
	defer func() { _ = httpLis.Close() }()
	addrs := Addrs{HTTP: httpLis.Addr().String(), GRPC: grpcLis.Addr().String()}
	if s.MetricsAddr != "" {
		metricsLis, err := serve.Listen(ctx, s.MetricsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", tel.MetricsHandler())
		serve.Aside(ctx, metricsLis, mux, "metrics", log)
		addrs.Metrics = metricsLis.Addr().String()
	}
	if p.Listening != nil {
		p.Listening(addrs)
	}
	return serve.Run(ctx, serve.Servers{
		GRPC:            srv,
		GRPCListener:    grpcLis,
		HTTP:            serve.HTTPServer(handler, log),
		HTTPListener:    httpLis,
		ShutdownTimeout: s.ShutdownTimeout,
		DrainDelay:      s.DrainDelay,
		Logger:          log,
	})
}

// runBackground starts loops and returns the function that ends them and waits until they have
// returned.
func runBackground(loops []func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Go(func() { loop(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// Every returns a loop for Parts.Background that runs job every interval until its context
// ends, first one interval after it starts, and logs as a warning, under what, each run that
// fails; the next run tries again.
func Every(interval time.Duration, log *slog.Logger, what string, job func(context.Context) error) func(context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := job(ctx); err != nil && ctx.Err() == nil {
					log.WarnContext(ctx, what, "error", err)
				}
			}
		}
	}
}

// NewID returns a UUIDv7: unique, and sorting by creation time, which the lists' order relies
// on.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// Load reads the shared settings and the service's own through lookup, and reports every
// invalid variable at once.
func Load[C any](spec Spec[C], lookup envconf.Lookup) (Settings, C, error) {
	s, cfg, _, err := read(spec, lookup)
	return s, cfg, err
}

// read is Load, also naming the secrets that took their public development value.
func read[C any](spec Spec[C], lookup envconf.Lookup) (Settings, C, []string, error) {
	s := defaults(spec.Name, spec.HTTPAddr, spec.GRPCAddr, spec.MetricsAddr)
	var cfg C
	// APP_ENV comes first: the defaults and refusals of the rest depend on it. Common has no
	// setting that does.
	_, errCommon := envconf.Load(&s.Common, "", lookup, false)
	prod := s.Production()
	devShared, errShared := envconf.Load(&s, s.prefix(), lookup, prod)
	devOwn, errOwn := envconf.Load(&cfg, s.prefix(), lookup, prod)
	errs := []error{errCommon, errShared, errOwn}
	if errShared == nil {
		errs = append(errs, s.check(spec.MutualTLS))
	}
	if errOwn == nil && spec.Check != nil {
		errs = append(errs, spec.Check(cfg, s))
	}
	if err := errors.Join(errs...); err != nil {
		return s, cfg, nil, fmt.Errorf("configuration: %w", err)
	}
	return s, cfg, append(devShared, devOwn...), nil
}

// Declared lists every setting of the service: the common ones, the shared ones and its own,
// with their defaults (package envconf).
func Declared[C any](spec Spec[C]) (common, shared, own []envconf.Setting, err error) {
	s := defaults(spec.Name, spec.HTTPAddr, spec.GRPCAddr, spec.MetricsAddr)
	var cfg C
	common, err1 := envconf.Declare(&s.Common, "")
	shared, err2 := envconf.Declare(&s, s.prefix())
	own, err3 := envconf.Declare(&cfg, s.prefix())
	return common, shared, own, errors.Join(err1, err2, err3)
}

// load reads every setting and makes the logger.
func load[C any](spec Spec[C], p Process) (Settings, C, *slog.Logger, error) {
	s, cfg, devSecrets, err := read(spec, p.LookupEnv)
	if err != nil {
		return s, cfg, nil, err
	}
	log, err := logging.New(p.Stdout, s.LogFormat, s.LogLevel)
	if err != nil {
		return s, cfg, nil, err
	}
	log = log.With("service", s.Name)
	log.Info("starting", "version", Version(), "settings", s, "config", envconf.LogValue(&cfg, s.prefix()))
	for _, name := range devSecrets {
		log.Warn("using the public development secret: anyone can forge what it signs; set a secret of your own", "variable", name)
	}
	return s, cfg, log, nil
}

// openMigrated opens the database and applies the migrations not applied yet.
func openMigrated[C any](ctx context.Context, spec Spec[C], s Settings, log *slog.Logger, opts ...database.Option) (*gorm.DB, error) {
	db, err := database.Open(ctx, s.Database(), log, opts...)
	if err != nil {
		return nil, err
	}
	if err := database.Migrate(ctx, db, s.Name, spec.Migrations(s.DemoData)); err != nil {
		_ = database.Close(db)
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

// openServing opens the database for serving: migrated now when MigrateOnStart is set, else
// checked to have no migration pending, so that a replica never serves a schema older than its
// code (on Kubernetes the init container migrate has run first).
func openServing[C any](ctx context.Context, spec Spec[C], s Settings, log *slog.Logger, opts ...database.Option) (*gorm.DB, error) {
	if s.MigrateOnStart {
		return openMigrated(ctx, spec, s, log, opts...)
	}
	db, err := database.Open(ctx, s.Database(), log, opts...)
	if err != nil {
		return nil, err
	}
	pending, err := database.Pending(ctx, db, spec.Migrations(s.DemoData))
	if err == nil && len(pending) > 0 {
		err = fmt.Errorf("%d migrations not applied yet (%s ... %s): run `%s-svc migrate`, or set %s=true",
			len(pending), pending[0], pending[len(pending)-1], s.Name, s.Var("MIGRATE_ON_START"))
	}
	if err != nil {
		_ = database.Close(db)
		return nil, err
	}
	return db, nil
}

// openServingChecked is openServing, and in production also refuses a database that holds
// demo rows (Spec.DemoRows): their accounts have a published password.
func openServingChecked[C any](ctx context.Context, spec Spec[C], s Settings, log *slog.Logger, opts ...database.Option) (*gorm.DB, error) {
	db, err := openServing(ctx, spec, s, log, opts...)
	if err != nil || !s.Production() {
		return db, err
	}
	if err := checkNoDemoRows(ctx, db, spec.DemoRows); err != nil {
		_ = database.Close(db)
		return nil, err
	}
	return db, nil
}

// ErrDemoRows is what a production start-up returns when the database holds demo rows.
var ErrDemoRows = errors.New("the database holds demo data, which production refuses (demo accounts have a published password)")

// checkNoDemoRows returns ErrDemoRows, naming the rows, when any of rows (IDs by table) is in
// db.
func checkNoDemoRows(ctx context.Context, db *gorm.DB, rows map[string][]string) error {
	var found []string
	for _, table := range slices.Sorted(maps.Keys(rows)) {
		var ids []string
		if err := db.WithContext(ctx).Table(table).Where("id IN ?", rows[table]).Order("id").Pluck("id", &ids).Error; err != nil {
			return fmt.Errorf("look for demo rows in %s: %w", table, err)
		}
		for _, id := range ids {
			found = append(found, table+" "+id)
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s; delete them, or start with APP_ENV=development", ErrDemoRows, strings.Join(found, ", "))
	}
	return nil
}

// descriptors returns the descriptors of the services registered on srv, for the gateway.
func descriptors(srv *grpc.Server) []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	for name := range srv.GetServiceInfo() {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if sd, ok := d.(protoreflect.ServiceDescriptor); err == nil && ok {
			out = append(out, sd)
		}
	}
	return out
}
