// Command cart-svc runs the cart service: the product catalog and each user's cart, over gRPC
// and, through grpc-gateway, REST. It asks the customers service to validate every token.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/uuid"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/pagetoken"
	"github.com/acme/shop/foundation/serve"
	"github.com/acme/shop/foundation/tlsconfig"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	"github.com/acme/shop/protos/openapi"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/cartdb"
	"github.com/acme/shop/cart-svc/internal/config"
	"github.com/acme/shop/cart-svc/internal/customersclient"
	"github.com/acme/shop/cart-svc/internal/grpcapi"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

func main() {
	// `cart-svc healthcheck` exits 0 when the running service is ready: the container health
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
		fmt.Fprintln(os.Stderr, "cart-svc:", err)
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
	log = log.With("service", "cart")
	log.Info("starting", "config", cfg)
	if cfg.DebugAddr != "" {
		serve.Debug(ctx, cfg.DebugAddr, log)
	}

	db, err := database.Open(ctx, database.Config{DSN: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath, MaxOpenConns: cfg.DBMaxConns}, log)
	if err != nil {
		return err
	}
	defer func() { _ = database.Close(db) }()
	if err := database.Migrate(ctx, db, "cart", migrations.All(cfg.DemoData)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	// One long-lived connection to customers, shared by every request.
	var customersTLS *tls.Config
	if cfg.CustomersTLS.Enabled() {
		t := cfg.CustomersTLS
		if customersTLS, err = tlsconfig.Client(t.CA, t.Cert, t.Key, t.ServerName); err != nil {
			return fmt.Errorf("customers TLS: %w", err)
		}
	}
	customers, err := customersclient.New(cfg.CustomersAddr, customersTLS, cfg.CustomersTimeout)
	if err != nil {
		return err
	}
	defer func() { _ = customers.Close() }()

	store, err := cartdb.New(db)
	if err != nil {
		return err
	}
	svc, err := cart.NewService(store, cart.Options{MaxQuantity: cfg.MaxQuantity, NewID: newID})
	if err != nil {
		return err
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

	srv, err := grpcserver.New(grpcserver.Options{
		Logger: log, Auth: auth.Interceptor(customers, log),
		Errors: grpcapi.Errors, Unavailable: database.IsUnavailable,
	})
	if err != nil {
		return err
	}
	cartv1.RegisterProductServiceServer(srv, grpcapi.NewProductServer(svc, pagetoken.New(cfg.PageTokenSecret)))
	cartv1.RegisterCartServiceServer(srv, grpcapi.NewCartServer(svc))

	// The gateway calls the services in-process, through the same interceptors as gRPC clients.
	handler, err := gateway.New(ctx, gateway.Config{
		Title: "cart",
		Conn:  srv.Local,
		Register: []gateway.RegisterFunc{
			gateway.Service(cartv1.RegisterProductServiceHandlerClient, cartv1.NewProductServiceClient),
			gateway.Service(cartv1.RegisterCartServiceHandlerClient, cartv1.NewCartServiceClient),
		},
		Services: []protoreflect.ServiceDescriptor{
			cartv1.File_cart_v1_product_proto.Services().ByName("ProductService"),
			cartv1.File_cart_v1_cart_proto.Services().ByName("CartService"),
		},
		OpenAPI: openapi.Cart,
		// Ready while serving (not shutting down) and what cart needs answers: its database and
		// customers.
		Ready: func(ctx context.Context) error {
			return errors.Join(srv.Serving(ctx), database.Ping(ctx, db), customers.Ping(ctx))
		},
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

// newID returns a UUIDv7: unique, and sorting by creation time, which the catalog relies on.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}
