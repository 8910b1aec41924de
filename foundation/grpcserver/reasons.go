package grpcserver

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
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
