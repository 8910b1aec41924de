// Package grpcapi is the customers service's gRPC transport: the authentication interceptor,
// thin handlers that turn requests into domain calls and results into responses, and the map
// from the customer domain's own errors to status codes (Errors), which the server applies to
// whatever a handler or the interceptor returns.
package grpcapi

import (
	"github.com/acme/shop/foundation/pagetoken"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// UserServer implements customersv1.UserServiceServer.
type UserServer struct {
	customersv1.UnimplementedUserServiceServer
	svc   *customer.Service
	pages *pagetoken.Codec
}

// NewUserServer returns the UserService handlers. pages signs the list's page tokens.
func NewUserServer(svc *customer.Service, pages *pagetoken.Codec) *UserServer {
	return &UserServer{svc: svc, pages: pages}
}

// AuthServer implements customersv1.AuthServiceServer.
type AuthServer struct {
	customersv1.UnimplementedAuthServiceServer
	svc     *customer.Service
	metrics *Metrics
}

// NewAuthServer returns the AuthService handlers. They count logins and token checks in m.
func NewAuthServer(svc *customer.Service, m *Metrics) *AuthServer {
	return &AuthServer{svc: svc, metrics: m}
}
