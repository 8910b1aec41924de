// Command customers-svc runs the customers service (users, logins, tokens) from these parts.
package main

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/acme/shop/foundation/events"
	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/foundation/pagetoken"
	"github.com/acme/shop/foundation/service"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
	"github.com/acme/shop/protos/openapi"

	"github.com/acme/shop/customers-svc/internal/config"
	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
	"github.com/acme/shop/customers-svc/internal/grpcapi"
	"github.com/acme/shop/customers-svc/internal/migrations"
	"github.com/acme/shop/customers-svc/internal/password"
	"github.com/acme/shop/customers-svc/internal/token"
	"github.com/acme/shop/customers-svc/internal/userevents"
)

func main() { service.Main(spec) }

var spec = service.Spec[config.Config]{
	Name: "customers", HTTPAddr: ":8081", GRPCAddr: ":50051", MetricsAddr: ":9091", MutualTLS: true,
	Migrations: migrations.All, DemoRows: migrations.DemoRows(), OpenAPI: openapi.Customers, Build: build,
}

func build(_ context.Context, d service.Deps[config.Config]) (service.Parts, error) {
	c := d.Config
	tokens, err := token.New(c.JWTSecret, nil)
	if err != nil {
		return service.Parts{}, err
	}
	store, err := customerdb.New(d.DB)
	if err != nil {
		return service.Parts{}, err
	}
	store.ObserveBatches(d.Telemetry.BatchKeys("sessions"))
	// A deletion commits with its UserDeleted event in the outbox; the relay publishes the
	// outbox to NATS JetStream (when NATS_URL is set), and sweeps what was sent.
	store.DeleteWith(userevents.Deleted(service.NewID, time.Now))
	relay, relayLoop, closeNATS, err := outboxRelay(d, c.OutboxRetention)
	if err != nil {
		return service.Parts{}, err
	}
	metrics := grpcapi.NewMetrics()
	svc, err := customer.NewService(store, password.New(password.OWASP, c.HashQueue), tokens, customer.NewThrottle(store, c.Limits(d.Settings.ClientIPv6Prefix)),
		customer.Options{TokenTTL: c.TokenTTL, NewID: service.NewID, MaxSessions: c.MaxSessionsPerUser, PasswordChecked: metrics.PasswordChecked})
	if err != nil {
		return service.Parts{}, err
	}
	users, auth := grpcapi.NewUserServer(svc, pagetoken.New(c.JWTSecret, "customers page tokens v1")), grpcapi.NewAuthServer(svc, metrics)
	return service.Parts{
		Auth: grpcapi.AuthInterceptor(svc), Errors: grpcapi.Errors,
		Collectors: append(metrics.Collectors(), relay.Collector("customers")),
		Background: []func(context.Context){
			service.Every(c.SessionSweepInterval, d.Log, "sweeping expired sessions", svc.SweepExpiredSessions),
			service.Every(c.SessionSweepInterval, d.Log, "sweeping the sent outbox", relay.Sweep),
			relayLoop,
		},
		Close: closeNATS,
		Register: func(s grpc.ServiceRegistrar) {
			customersv1.RegisterUserServiceServer(s, users)
			customersv1.RegisterAuthServiceServer(s, auth)
		},
		REST: []gateway.RegisterFunc{
			gateway.Service(customersv1.RegisterUserServiceHandlerClient, customersv1.NewUserServiceClient),
			gateway.Service(customersv1.RegisterAuthServiceHandlerClient, customersv1.NewAuthServiceClient),
		},
	}, nil
}

// outboxRelay returns the relay of the outbox, the loop that publishes it to NATS (nothing
// without NATS_URL, in development: the rows wait) and the function that closes the
// connection.
func outboxRelay(d service.Deps[config.Config], retention time.Duration) (*events.Relay, func(context.Context), func() error, error) {
	url, err := d.Settings.EventsURL()
	if err != nil {
		return nil, nil, nil, err
	}
	if url == "" {
		return events.NewRelay(d.DB, events.RelayOptions{Retention: retention}), func(context.Context) {}, func() error { return nil }, nil
	}
	nc, js, err := events.Connect(url, "customers", d.Log)
	if err != nil {
		return nil, nil, nil, err
	}
	streams := events.Streams{Replicas: d.Settings.NATSStreamReplicas, MaxAge: d.Settings.NATSStreamMaxAge}
	relay := events.NewRelay(d.DB, events.RelayOptions{Publish: events.PublishTo(js, streams, 5*time.Second), Retention: retention, Log: d.Log})
	loop := func(ctx context.Context) {
		if streams.EnsureUntil(ctx, js, d.Log) {
			relay.Run(ctx)
		}
	}
	return relay, loop, func() error { nc.Close(); return nil }, nil
}
