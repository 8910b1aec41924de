// Command customers-svc runs the customers service (users, logins, tokens) from these parts.
package main

import (
	"context"

	"google.golang.org/grpc"

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
	metrics := grpcapi.NewMetrics()
	svc, err := customer.NewService(store, password.New(password.OWASP, c.HashQueue), tokens, customer.NewThrottle(store, c.Limits(d.Settings.ClientIPv6Prefix)),
		customer.Options{TokenTTL: c.TokenTTL, NewID: service.NewID, MaxSessions: c.MaxSessionsPerUser, PasswordChecked: metrics.PasswordChecked})
	if err != nil {
		return service.Parts{}, err
	}
	users, auth := grpcapi.NewUserServer(svc, pagetoken.New(c.JWTSecret, "customers page tokens v1")), grpcapi.NewAuthServer(svc, metrics)
	return service.Parts{
		Auth: grpcapi.AuthInterceptor(svc), Errors: grpcapi.Errors, Collectors: metrics.Collectors(),
		Background: []func(context.Context){service.Every(c.SessionSweepInterval, d.Log, "sweeping expired sessions", svc.SweepExpiredSessions)},
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
