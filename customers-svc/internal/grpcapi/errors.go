package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// toStatus is the one place where domain errors become gRPC status errors. Anything it does
// not know is logged with the method and answered with a generic INTERNAL.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	var (
		verr      *customer.ValidationError
		throttled *customer.ThrottledError
	)
	switch {
	case errors.As(err, &verr):
		violations := make([]grpcserver.FieldViolation, len(verr.Fields))
		for i, f := range verr.Fields {
			violations[i] = grpcserver.FieldViolation{Field: f.Field, Description: f.Message}
		}
		return grpcserver.InvalidArgument(verr.Error(), violations...)
	case errors.As(err, &throttled):
		secs := int(throttled.RetryAfter.Seconds())
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(secs)))
		return status.Errorf(codes.ResourceExhausted, "too many failed logins; retry after %d seconds", secs)
	case errors.Is(err, customer.ErrNotFound):
		return status.Error(codes.NotFound, "user not found")
	case errors.Is(err, customer.ErrEmailTaken):
		return status.Error(codes.AlreadyExists, "email address is already taken")
	case errors.Is(err, customer.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "permission denied")
	case errors.Is(err, customer.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "invalid credentials or token")
	default:
		return grpcserver.UnexpectedError(ctx, log, err)
	}
}
