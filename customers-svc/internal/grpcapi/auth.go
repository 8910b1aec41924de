package grpcapi

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// access says whether an RPC needs a token.
type access int

const (
	required access = iota // a valid token is required (the default for any RPC not listed)
	public                 // no token is needed or looked at
	optional               // a token is checked if present (an admin creating an admin)
)

// methodAccess lists the RPCs that do not require a token; every other RPC does, so a new RPC
// is protected until someone decides otherwise. Streaming RPCs (reflection) bypass unary
// interceptors and carry no user data.
var methodAccess = map[string]access{
	customersv1.AuthService_Login_FullMethodName:         public,
	customersv1.AuthService_ValidateToken_FullMethodName: public,
	customersv1.UserService_CreateUser_FullMethodName:    optional,
	healthpb.Health_Check_FullMethodName:                 public,
	healthpb.Health_List_FullMethodName:                  public,
}

// IsPublic reports whether method may be called without a token.
func IsPublic(method string) bool { return methodAccess[method] != required }

type callerKey struct{}

// callerFrom returns the authenticated caller, if the request had a valid token.
func callerFrom(ctx context.Context) (customer.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(customer.Caller)
	return c, ok
}

// AuthInterceptor authenticates every call that needs it from its `authorization: Bearer
// <token>` metadata and puts the caller into the context. Its errors are translated like the
// handlers' (Errors). It never logs tokens.
func AuthInterceptor(svc *customer.Service) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		acc := methodAccess[info.FullMethod]
		if acc == public {
			return handler(ctx, req)
		}
		token, present, err := grpcserver.BearerToken(ctx)
		if err != nil {
			return nil, err
		}
		if !present {
			if acc == optional {
				return handler(ctx, req)
			}
			return nil, status.Error(codes.Unauthenticated, "missing bearer token")
		}
		caller, _, err := svc.Authenticate(ctx, token)
		if err != nil {
			return nil, err
		}
		return handler(context.WithValue(ctx, callerKey{}, caller), req)
	}
}
