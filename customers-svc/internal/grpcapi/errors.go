package grpcapi

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// Errors is the customers service's part of the map from errors to status codes
// (grpcserver.Options.Errors): the customer domain's own errors. A throttled login also sets
// the call's retry-after header, which the gateway answers as Retry-After. Invalid input,
// permission denied and anything unexpected are the server's, the same in every service; it
// returns nil for those.
func Errors(ctx context.Context, err error) *status.Status {
	var throttled *customer.ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := int(throttled.RetryAfter.Seconds())
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(secs)))
		return status.Newf(codes.ResourceExhausted, "too many failed logins; retry after %d seconds", secs)
	case errors.Is(err, customer.ErrNotFound):
		return status.New(codes.NotFound, "user not found")
	case errors.Is(err, customer.ErrEmailTaken):
		return status.New(codes.AlreadyExists, "email address is already taken")
	case errors.Is(err, customer.ErrUnauthenticated):
		return status.New(codes.Unauthenticated, "invalid credentials or token")
	}
	return nil
}
