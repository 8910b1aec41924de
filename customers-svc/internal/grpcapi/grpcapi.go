// Package grpcapi is the customers service's gRPC transport: thin handlers that turn requests
// into domain calls and domain results into responses.
package grpcapi

import (
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// UserServer implements customersv1.UserServiceServer.
type UserServer struct {
	customersv1.UnimplementedUserServiceServer
}

// AuthServer implements customersv1.AuthServiceServer.
type AuthServer struct {
	customersv1.UnimplementedAuthServiceServer
}
