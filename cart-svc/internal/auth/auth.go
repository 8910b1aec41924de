// Package auth authenticates the cart service's callers. Cart does not check tokens itself: its
// interceptor asks a Validator, which in production is the customers service over gRPC
// (package customersclient), so that revocation takes effect everywhere at once.
package auth

//go:generate mockgen -destination=authmock/validator.go -package=authmock . Validator

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/cart"
)

// Errors a Validator returns.
var (
	// ErrInvalidToken means the token is not valid right now.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnavailable means the validator could not be asked (down, timed out).
	ErrUnavailable = errors.New("token validation unavailable")
)

// Validator checks an access token and says whom it belongs to.
type Validator interface {
	// Validate returns the token's caller, ErrInvalidToken, ErrUnavailable, or another error
	// for anything unexpected.
	Validate(ctx context.Context, token string) (cart.Caller, error)
}

// publicMethods are the RPCs that need no token; every other RPC does, so a new RPC is protected
// until someone decides otherwise. They never call the validator.
var publicMethods = map[string]bool{
	cartv1.ProductService_ListProducts_FullMethodName: true,
	cartv1.ProductService_GetProduct_FullMethodName:   true,
	healthpb.Health_Check_FullMethodName:              true,
	healthpb.Health_List_FullMethodName:               true,
}

// IsPublic reports whether method may be called without a token.
func IsPublic(method string) bool { return publicMethods[method] }

type callerKey struct{}

// CallerFrom returns the authenticated caller of a request.
func CallerFrom(ctx context.Context) (cart.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(cart.Caller)
	return c, ok
}

// WithCaller returns ctx carrying caller, as the interceptor does (for handler tests).
func WithCaller(ctx context.Context, caller cart.Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// Interceptor authenticates every non-public call with v and puts the caller into the context.
// A missing, malformed or invalid token is UNAUTHENTICATED; a validator that cannot be reached
// is UNAVAILABLE; anything else is INTERNAL with a generic message. Tokens are never logged.
func Interceptor(v Validator, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if publicMethods[info.FullMethod] {
			return handler(ctx, req)
		}
		token, present, err := grpcserver.BearerToken(ctx)
		if err != nil {
			return nil, err
		}
		if !present {
			return nil, status.Error(codes.Unauthenticated, "missing bearer token")
		}
		caller, err := v.Validate(ctx, token)
		switch {
		case err == nil:
			return handler(WithCaller(ctx, caller), req)
		case errors.Is(err, ErrInvalidToken):
			return nil, status.Error(codes.Unauthenticated, "invalid or expired token")
		case errors.Is(err, ErrUnavailable):
			log.WarnContext(ctx, "token validation unavailable", "method", info.FullMethod, "err", err)
			return nil, status.Error(codes.Unavailable, "authentication is temporarily unavailable")
		default:
			log.ErrorContext(ctx, "token validation failed", "method", info.FullMethod, "err", err)
			return nil, status.Error(codes.Internal, "internal error")
		}
	}
}
