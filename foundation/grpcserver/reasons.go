package grpcserver

import (
	"context"
	"math"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Reasons of the google.rpc.ErrorInfo detail of the errors whose HTTP status is not the one
// their gRPC code maps to (gateway.reasonStatus gives theirs).
const (
	// ReasonETagMismatch: the request's etag (If-Match) is not the resource's current one
	// (ABORTED; HTTP 412).
	ReasonETagMismatch = "ETAG_MISMATCH"
	// ReasonIdempotencyKeyReused: an Idempotency-Key was used before for a different request
	// (INVALID_ARGUMENT; HTTP 422).
	ReasonIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	// ReasonIdempotencyKeyInUse: the first request with this Idempotency-Key is still running
	// (ABORTED; HTTP 409).
	ReasonIdempotencyKeyInUse = "IDEMPOTENCY_KEY_IN_USE"
)

// ErrorDomain is the domain of the ErrorInfo details the services send.
const ErrorDomain = "shop.acme.example"

// WithReason returns a status error of code with msg and an ErrorInfo detail naming reason.
func WithReason(code codes.Code, reason, msg string) error {
	st := status.New(code, msg)
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// Reason returns the ErrorInfo reason of st, or "".
func Reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// RetryAfterKey is the response header metadata that says, in whole seconds, when a call that
// was refused for now (RESOURCE_EXHAUSTED) may be tried again; the REST gateway sends it as the
// header Retry-After.
const RetryAfterKey = "retry-after"

// RetryAfter returns RESOURCE_EXHAUSTED (HTTP 429) with msg for the call of ctx, which may be
// tried again after wait, and sets the call's retry-after header to wait in whole seconds,
// rounded up, at least 1.
func RetryAfter(ctx context.Context, wait time.Duration, msg string) error {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterKey, strconv.FormatInt(secs, 10)))
	return status.Errorf(codes.ResourceExhausted, "%s; retry after %d seconds", msg, secs)
}
