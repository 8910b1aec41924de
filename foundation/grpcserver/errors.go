package grpcserver

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/database"
)

// UnexpectedError maps an error that no domain rule explains: a cancelled or timed-out call
// keeps its code, an unreachable database is UNAVAILABLE (503, logged as a warning), and
// anything else is logged with the method and answered with a generic INTERNAL that carries no
// detail. Each service's own error map ends with it.
func UnexpectedError(ctx context.Context, log *slog.Logger, err error) error {
	method, _ := grpc.Method(ctx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case database.IsUnavailable(err):
		log.WarnContext(ctx, "database unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "service temporarily unavailable")
	default:
		log.ErrorContext(ctx, "internal error", "method", method, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
}
