// Command cart-svc runs the cart service (catalog, carts; customers checks tokens) from these parts.
package main

import (
	"context"

	"google.golang.org/grpc"

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
)

func main() { service.Main(spec) }

var spec = service.Spec[config.Config]{
	Name: "cart", HTTPAddr: ":8082", GRPCAddr: ":50052", MetricsAddr: ":9092",
	Check: config.Config.Check, Migrations: migrations.All, DemoRows: migrations.DemoRows(),
	OpenAPI: openapi.Cart, Build: build,
}

func build(_ context.Context, d service.Deps[config.Config]) (service.Parts, error) {
	customersTLS, err := d.Certificates.Client("customers_client", d.Config.CustomersTLS)
	if err != nil {
		return service.Parts{}, err
	}
	customers, err := customersclient.New(d.Config.CustomersAddr, customersTLS, d.Config.CustomersTimeout, d.Telemetry.ClientOptions()...)
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
	// Each user's calls that change something, counted in the database across replicas.
	writes, err := ratelimit.New(d.DB, ratelimit.Options{Limit: d.Config.WriteLimit, Window: d.Config.WriteWindow})
	if err != nil {
		return service.Parts{}, err
	}
	svc, err := cart.NewService(store, cart.Options{MaxQuantity: d.Config.MaxQuantity, NewID: service.NewID})
	if err != nil {
		return service.Parts{}, err
	}
	return service.Parts{
		Auth: auth.Interceptor(customers, d.Log), Errors: grpcapi.Errors,
		RateLimit: grpcserver.LimitWrites(writes.Take, auth.UserID), Idempotency: keys,
		// Expired keys and closed windows go in batches, swept by one replica at a time.
		Background: []func(context.Context){
			service.Every(d.Config.SweepInterval, d.Log, "sweeping expired idempotency keys", keyStore.Sweep),
			service.Every(d.Config.SweepInterval, d.Log, "sweeping closed write-limit windows", writes.Sweep),
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
		Close:        customers.Close, Collectors: customers.Collectors(),
	}, nil
}
