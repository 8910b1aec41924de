package grpcserver

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/permission"
	"github.com/acme/shop/foundation/validation"
)

// errorsInterceptor is the one place where the errors of handlers and of the Auth hook become
// status errors. Status errors pass unchanged (but see below). The errors both services share: a
// *validation.Error is INVALID_ARGUMENT with a google.rpc.BadRequest detail, permission.ErrDenied
// is PERMISSION_DENIED, etag.ErrMismatch is ABORTED with the ErrorInfo reason ETAG_MISMATCH.
// Then the service's own map (Options.Errors) is asked. What no one explains: an unavailable
// dependency (Options.Unavailable) is UNAVAILABLE (503, logged as a warning), and anything else
// is logged with the method and answered with a generic INTERNAL that carries no detail.
//
// Whose a context error is depends on whose context ended, not on the error: once the call's
// own context has ended (the client hung up or its deadline passed), whatever the handler
// returned on its way out (a wrapped context error, SQLite's "interrupted", a rolled-back
// transaction) is CANCELED or DEADLINE_EXCEEDED, logged below error level. A context error
// while the call's context is still live is a deadline or cancellation of the server's own (a
// batched lookup's database.LookupTimeout, say): a dependency that did not answer in time,
// UNAVAILABLE like one that cannot be reached.
func errorsInterceptor(opts Options) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, toStatus(ctx, opts, info.FullMethod, err)
	}
}

func toStatus(ctx context.Context, opts Options, method string, err error) error {
	var verr *validation.Error
	switch {
	case errors.As(err, &verr):
		return badRequest(verr)
	case errors.Is(err, permission.ErrDenied):
		return status.Error(codes.PermissionDenied, "permission denied")
	case errors.Is(err, etag.ErrMismatch):
		return WithReason(codes.Aborted, ReasonETagMismatch, "the etag does not match the resource's current etag")
	}
	if opts.Errors != nil {
		if st := opts.Errors(ctx, err); st != nil {
			return st.Err()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		opts.Unavailable != nil && opts.Unavailable(err):
		opts.Logger.WarnContext(ctx, "dependency unavailable", "grpc.method", method, "err", err)
		_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterKey, strconv.Itoa(int(UnavailableRetryAfter.Seconds()))))
		return status.Error(codes.Unavailable, "service temporarily unavailable")
	default:
		opts.Logger.ErrorContext(ctx, "internal error", "grpc.method", method, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
}

// badRequest is INVALID_ARGUMENT with a google.rpc.BadRequest detail holding one field
// violation per violation of verr.
func badRequest(verr *validation.Error) error {
	st := status.New(codes.InvalidArgument, verr.Error())
	br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(verr.Violations))}
	for i, v := range verr.Violations {
		br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description}
	}
	withDetails, err := st.WithDetails(br)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}
