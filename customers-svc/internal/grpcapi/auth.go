package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	"github.com/acme/shop/foundation/access"
	"github.com/acme/shop/foundation/grpcserver"

	"github.com/acme/shop/customers-svc/internal/customer"
)

type callerKey struct{}

// callerFrom returns the authenticated caller, if the request had a valid token.
func callerFrom(ctx context.Context) (customer.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(customer.Caller)
	return c, ok
}

// AuthInterceptor authenticates each call as its RPC's `(shop.v1.access)` option asks (see
// package access) from its `authorization: Bearer <token>` metadata, and puts the caller into
// the context. Its errors are translated like the handlers' (Errors). It never logs tokens.
func AuthInterceptor(svc *customer.Service) grpc.UnaryServerInterceptor {
	return access.Interceptor(func(ctx context.Context, token string) (context.Context, error) {
		caller, _, err := svc.Authenticate(ctx, token)
		if err != nil {
			return nil, err
		}
		caller.Addr = grpcserver.ClientAddr(ctx)
		return context.WithValue(ctx, callerKey{}, caller), nil
	})
}
