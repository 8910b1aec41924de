// Package grpcapi is the customers service's gRPC transport: the authentication interceptor,
// thin handlers that turn requests into domain calls and results into responses, and the one
// map from domain errors to status codes.
package grpcapi

import (
	"log/slog"

	"github.com/acme/shop/foundation/pagetoken"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// UserServer implements customersv1.UserServiceServer.
type UserServer struct {
	customersv1.UnimplementedUserServiceServer
	svc   *customer.Service
	pages *pagetoken.Codec
	log   *slog.Logger
}

// NewUserServer returns the UserService handlers. pages signs the list's page tokens.
func NewUserServer(svc *customer.Service, pages *pagetoken.Codec, log *slog.Logger) *UserServer {
	return &UserServer{svc: svc, pages: pages, log: log}
}

// AuthServer implements customersv1.AuthServiceServer.
type AuthServer struct {
	customersv1.UnimplementedAuthServiceServer
	svc *customer.Service
	log *slog.Logger
}

// NewAuthServer returns the AuthService handlers.
func NewAuthServer(svc *customer.Service, log *slog.Logger) *AuthServer {
	return &AuthServer{svc: svc, log: log}
}
