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
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/access"

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

type callerKey struct{}

// CallerFrom returns the authenticated caller of a request.
func CallerFrom(ctx context.Context) (cart.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(cart.Caller)
	return c, ok
}

// UserID returns the id of the authenticated caller of a request (idempotency.Options.Caller).
func UserID(ctx context.Context) (string, bool) {
	c, ok := CallerFrom(ctx)
	return c.UserID, ok
}

// WithCaller returns ctx carrying caller, as the interceptor does (for handler tests).
func WithCaller(ctx context.Context, caller cart.Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// Interceptor authenticates each call as its RPC's `(shop.v1.access)` option asks (see package
// access) with v, and puts the caller into the context. A missing, malformed or invalid token
// is UNAUTHENTICATED; a validator that cannot be reached is UNAVAILABLE; a caller that gave up
// keeps CANCELED or DEADLINE_EXCEEDED; anything else is INTERNAL with a generic message. Tokens are never logged.
func Interceptor(v Validator, log *slog.Logger) grpc.UnaryServerInterceptor {
	return access.Interceptor(func(ctx context.Context, token string) (context.Context, error) {
		caller, err := v.Validate(ctx, token)
		switch {
		case err == nil:
			return WithCaller(ctx, caller), nil
		case errors.Is(err, ErrInvalidToken):
			return nil, status.Error(codes.Unauthenticated, "invalid or expired token")
		case errors.Is(err, ErrUnavailable):
			// First: customers not answering within the validator's own timeout wraps a
			// context error too, but it is customers', not the caller's.
			method, _ := grpc.Method(ctx)
			log.WarnContext(ctx, "token validation unavailable", "method", method, "err", err)
			return nil, status.Error(codes.Unavailable, "authentication is temporarily unavailable")
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			// The caller gave up or ran out of time: the call keeps CANCELED or
			// DEADLINE_EXCEEDED, and nothing failed here.
			return nil, status.FromContextError(err).Err()
		default:
			method, _ := grpc.Method(ctx)
			log.ErrorContext(ctx, "token validation failed", "method", method, "err", err)
			return nil, status.Error(codes.Internal, "internal error")
		}
	})
}
