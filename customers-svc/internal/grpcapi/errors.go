package grpcapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/password"
)

// Errors is the customers service's part of the map from errors to status codes
// (grpcserver.Options.Errors): the customer domain's own errors and the hashing queue's. A
// throttled call (too many failed logins or registrations, or a full hashing queue) also sets
// the call's retry-after header, which the gateway answers as Retry-After. Invalid input,
// permission denied and anything unexpected are the server's, the same in every service; it
// returns nil for those.
func Errors(ctx context.Context, err error) *status.Status {
	var throttled *customer.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return status.Convert(grpcserver.RetryAfter(ctx, throttled.RetryAfter, "too many attempts"))
	case errors.Is(err, password.ErrBusy):
		return status.Convert(grpcserver.RetryAfter(ctx, time.Second, "too many requests at once"))
	case errors.Is(err, customer.ErrLastAdmin):
		return status.New(codes.Aborted, "the last admin cannot be demoted or deleted")
	case errors.Is(err, customer.ErrNotFound):
		return status.New(codes.NotFound, "user not found")
	case errors.Is(err, customer.ErrEmailTaken):
		return status.New(codes.AlreadyExists, "email address is already taken")
	case errors.Is(err, customer.ErrUnauthenticated):
		return status.New(codes.Unauthenticated, "invalid credentials or token")
	}
	return nil
}
