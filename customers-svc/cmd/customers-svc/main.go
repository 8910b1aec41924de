// Command customers-svc runs the customers service: users, login and access tokens, over gRPC
// and, through grpc-gateway, REST.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/google/uuid"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/pagetoken"
	"github.com/acme/shop/foundation/serve"
	"github.com/acme/shop/foundation/tlsconfig"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
	"github.com/acme/shop/protos/openapi"

	"github.com/acme/shop/customers-svc/internal/config"
	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
	"github.com/acme/shop/customers-svc/internal/grpcapi"
	"github.com/acme/shop/customers-svc/internal/migrations"
	"github.com/acme/shop/customers-svc/internal/password"
	"github.com/acme/shop/customers-svc/internal/token"
)

func main() {
	// `customers-svc healthcheck` exits 0 when the running service is ready: the container health
	// check, in an image without curl.
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		cfg, err := config.Load(os.Getenv)
		if err == nil {
			err = serve.Probe(context.Background(), cfg.HTTPAddr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "healthcheck:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "customers-svc:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx is cancelled and the servers have shut down.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log, err := logging.New(stdout, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	log = log.With("service", "customers")
	log.Info("starting", "config", cfg)
	if cfg.DebugAddr != "" {
		serve.Debug(ctx, cfg.DebugAddr, log)
	}

	db, err := database.Open(ctx, database.Config{DSN: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath, MaxOpenConns: cfg.DBMaxConns}, log)
	if err != nil {
		return err
	}
	defer func() { _ = database.Close(db) }()
	if err := database.Migrate(ctx, db, "customers", migrations.All(cfg.DemoData)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	grpcLis, err := serve.Listen(ctx, cfg.GRPCAddr)
	if err != nil {
		return err
	}
	defer func() { _ = grpcLis.Close() }()
	httpLis, err := serve.Listen(ctx, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	defer func() { _ = httpLis.Close() }()

	tokens, err := token.New(cfg.JWTSecret, time.Now)
	if err != nil {
		return err
	}
	store, err := customerdb.New(db)
	if err != nil {
		return err
	}
	svc, err := customer.NewService(
		store,
		password.New(password.OWASP),
		tokens,
		customer.NewThrottle(cfg.LoginWindow, cfg.LoginMaxPerEmail, cfg.LoginMaxPerAddr),
		customer.Options{TokenTTL: cfg.TokenTTL, NewID: newID},
	)
	if err != nil {
		return err
	}
	// With TLS on, the gRPC port speaks TLS (mutual when a client CA is set).
	var serverOpts []grpc.ServerOption
	if t := cfg.GRPCTLS; t.Enabled() {
		serverTLS, err := tlsconfig.Server(t.Cert, t.Key, t.ClientCA)
		if err != nil {
			return fmt.Errorf("gRPC TLS: %w", err)
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(serverTLS)))
	}
	// NewService hashed a dummy password (19 MiB of argon2id memory); hand that memory back to
	// the OS now rather than carry it as resident size until the scavenger gets to it.
	debug.FreeOSMemory()
	srv, err := grpcserver.New(grpcserver.Options{
		Logger: log, Auth: grpcapi.AuthInterceptor(svc),
		Errors: grpcapi.Errors, Unavailable: database.IsUnavailable,
		ServerOptions: serverOpts,
	})
	if err != nil {
		return err
	}
	customersv1.RegisterUserServiceServer(srv, grpcapi.NewUserServer(svc, pagetoken.New(pageTokenKey(cfg.JWTSecret))))
	customersv1.RegisterAuthServiceServer(srv, grpcapi.NewAuthServer(svc))

	// The gateway calls the services in-process, through the same interceptors as gRPC clients.
	handler, err := gateway.New(ctx, gateway.Config{
		Title: "customers",
		Conn:  srv.Local,
		Register: []gateway.RegisterFunc{
			gateway.Service(customersv1.RegisterUserServiceHandlerClient, customersv1.NewUserServiceClient),
			gateway.Service(customersv1.RegisterAuthServiceHandlerClient, customersv1.NewAuthServiceClient),
		},
		Services: []protoreflect.ServiceDescriptor{
			customersv1.File_customers_v1_user_proto.Services().ByName("UserService"),
			customersv1.File_customers_v1_auth_proto.Services().ByName("AuthService"),
		},
		OpenAPI: openapi.Customers,
		// Ready while serving (not shutting down) and the database answers.
		Ready:  func(ctx context.Context) error { return errors.Join(srv.Serving(ctx), database.Ping(ctx, db)) },
		Logger: log,
	})
	if err != nil {
		return err
	}

	return serve.Run(ctx, serve.Servers{
		GRPC:            srv,
		GRPCListener:    grpcLis,
		HTTP:            serve.HTTPServer(handler, log),
		HTTPListener:    httpLis,
		ShutdownTimeout: cfg.ShutdownTimeout,
		DrainDelay:      cfg.DrainDelay,
		Logger:          log,
	})
}

// newID returns a UUIDv7: unique, and sorting by creation time, which the user list relies on.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// pageTokenKey derives the page-token signing key from the JWT secret, so that the two
// signatures never share a key and there is one secret less to configure.
func pageTokenKey(jwtSecret []byte) []byte {
	m := hmac.New(sha256.New, jwtSecret)
	m.Write([]byte("customers page tokens v1"))
	return m.Sum(nil)
}
