// Command cart-svc runs the cart service (catalog, carts; customers checks tokens) from these parts.
package main

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/events"
	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/idempotency"
	"github.com/acme/shop/foundation/pagetoken"
	"github.com/acme/shop/foundation/ratelimit"
	"github.com/acme/shop/foundation/service"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	"github.com/acme/shop/protos/openapi"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/cartdb"
	"github.com/acme/shop/cart-svc/internal/config"
	"github.com/acme/shop/cart-svc/internal/customersclient"
	"github.com/acme/shop/cart-svc/internal/grpcapi"
	"github.com/acme/shop/cart-svc/internal/migrations"
	"github.com/acme/shop/cart-svc/internal/userevents"
)

func main() { service.Main(spec) }

var spec = service.Spec[config.Config]{
	Name: "cart", HTTPAddr: ":8082", GRPCAddr: ":50052", MetricsAddr: ":9092",
	Check: config.Config.Check, Migrations: migrations.All, DemoRows: migrations.DemoRows(),
	OpenAPI: openapi.Cart, Build: build,
	Tasks: map[string]service.Task[config.Config]{
		"reconcile": {Help: "erase the carts of users that customers says do not exist, and exit", Run: reconcile},
	},
}

// reconcileLock is the lock under which one replica at a time reconciles.
const reconcileLock = "cart reconcile"

// reconcile asks customers about every cart's owner and erases the carts of those it does not
// have (cart-svc reconcile).
func reconcile(ctx context.Context, d service.Deps[config.Config]) error {
	customers, err := customersClient(d)
	if err != nil {
		return err
	}
	defer func() { _ = customers.Close() }()
	store, err := cartdb.New(d.DB)
	if err != nil {
		return err
	}
	svc, err := cart.NewService(store, cart.Options{MaxQuantity: d.Config.MaxQuantity, NewID: service.NewID})
	if err != nil {
		return err
	}
	return store.Alone(ctx, reconcileLock, func(ctx context.Context) error {
		n, err := svc.Reconcile(ctx, customers)
		d.Log.InfoContext(ctx, "reconciled carts with customers", "erased", n)
		return err
	})
}

func build(_ context.Context, d service.Deps[config.Config]) (service.Parts, error) {
	customers, err := customersClient(d)
	if err != nil {
		return service.Parts{}, err
	}
	customers.ObserveBatches(d.Telemetry.BatchKeys("validations"))
	store, err := cartdb.New(d.DB)
	if err != nil {
		return service.Parts{}, err
	}
	store.ObserveBatches(d.Telemetry.BatchKeys("carts"))
	// Idempotency-Keys, per user and at most IdempotencyMaxKeys live, on the RPCs that declare
	// them: the interceptor answers a repeat with the first answer, if the caller may still make
	// the request, and the store commits each write with its key's mark, so that a retry after
	// a lost answer writes nothing again.
	keyStore := idempotency.NewStore(d.DB, idempotency.StoreOptions{MaxKeys: d.Config.IdempotencyMaxKeys})
	keys, err := idempotency.Interceptor(idempotency.Options{
		Store: keyStore, Caller: auth.UserID, Authorize: grpcapi.Authorize, Logger: d.Log,
	})
	if err != nil {
		return service.Parts{}, err
	}
	store.CommitWith(idempotency.Apply)
	// An erasure also forgets the recorded answers of the user's requests and of requests on
	// their cart (an add keeps the cart's owner as its reference).
	store.ForgetWith(func(tx *gorm.DB, userID string) error { return idempotency.Forget(tx, userID, userID) })
	// Each user's calls that change something, counted in the database across replicas.
	writes, err := ratelimit.New(d.DB, ratelimit.Options{Limit: d.Config.WriteLimit, Window: d.Config.WriteWindow})
	if err != nil {
		return service.Parts{}, err
	}
	svc, err := cart.NewService(store, cart.Options{MaxQuantity: d.Config.MaxQuantity, NewID: service.NewID})
	if err != nil {
		return service.Parts{}, err
	}
	// UserDeleted events from customers, through NATS JetStream, erase the user's data.
	consumer, eventMetrics, closeNATS, err := userDeleted(d, svc)
	if err != nil {
		return service.Parts{}, err
	}
	return service.Parts{
		Auth: auth.Interceptor(customers, d.Log), Errors: grpcapi.Errors,
		RateLimit: grpcserver.LimitWrites(writes.Take, auth.UserID), Idempotency: keys,
		// Expired keys, closed windows and old handled events go in batches, swept by one replica
		// at a time.
		Background: []func(context.Context){
			service.Every(d.Config.SweepInterval, d.Log, "sweeping expired idempotency keys", keyStore.Sweep),
			service.Every(d.Config.SweepInterval, d.Log, "sweeping closed write-limit windows", writes.Sweep),
			service.Every(d.Config.SweepInterval, d.Log, "sweeping handled events", func(ctx context.Context) error {
				return store.SweepHandledEvents(ctx, time.Now().Add(-d.Config.HandledEventsRetention))
			}),
			consumer,
			// The safety net behind the events, one replica at a time.
			service.Every(d.Config.ReconcileInterval, d.Log, "reconciling carts with customers", func(ctx context.Context) error {
				return store.Alone(ctx, reconcileLock, func(ctx context.Context) error {
					n, err := svc.Reconcile(ctx, customers)
					if n > 0 {
						d.Log.InfoContext(ctx, "reconciled carts with customers", "erased", n)
					}
					return err
				})
			}),
		},
		Register: func(s grpc.ServiceRegistrar) {
			cartv1.RegisterProductServiceServer(s, grpcapi.NewProductServer(svc, pagetoken.New(d.Config.PageTokenSecret, "cart page tokens v1")))
			cartv1.RegisterCartServiceServer(s, grpcapi.NewCartServer(svc))
		},
		REST: []gateway.RegisterFunc{
			gateway.Service(cartv1.RegisterProductServiceHandlerClient, cartv1.NewProductServiceClient),
			gateway.Service(cartv1.RegisterCartServiceHandlerClient, cartv1.NewCartServiceClient),
		},
		Dependencies: map[string]func(context.Context) error{"customers": customers.Ping},
		Close:        func() error { closeNATS(); return customers.Close() },
		Collectors:   append(customers.Collectors(), eventMetrics.Collectors()...),
	}, nil
}

// userDeleted returns the loop of cart's durable consumer of UserDeleted (nothing without
// NATS_URL, in development), its metrics, and the function that closes the connection.
func userDeleted(d service.Deps[config.Config], svc *cart.Service) (func(context.Context), *events.ConsumerMetrics, func(), error) {
	metrics := events.NewConsumerMetrics("cart")
	opts := userevents.Consumer(svc)
	metrics.Init(opts.Type)
	url, err := d.Settings.EventsURL()
	if err != nil {
		return nil, nil, nil, err
	}
	if url == "" {
		return func(context.Context) {}, metrics, func() {}, nil
	}
	nc, js, err := events.Connect(url, "cart", d.Log)
	if err != nil {
		return nil, nil, nil, err
	}
	opts.Streams = events.Streams{Replicas: d.Settings.NATSStreamReplicas, MaxAge: d.Settings.NATSStreamMaxAge}
	opts.Metrics, opts.Log = metrics, d.Log
	if tp := d.Telemetry.TracerProvider(); tp != nil {
		opts.Tracer = tp
	}
	return func(ctx context.Context) { events.Consume(ctx, js, opts) }, metrics, nc.Close, nil
}

// customersClient connects to customers as configured, over TLS that follows its files.
func customersClient(d service.Deps[config.Config]) (*customersclient.Client, error) {
	creds, err := d.Certificates.Client("customers_client", d.Config.CustomersTLS)
	if err != nil {
		return nil, err
	}
	return customersclient.New(d.Config.CustomersAddr, creds, d.Config.CustomersTimeout, d.Telemetry.ClientOptions()...)
}
