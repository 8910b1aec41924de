package grpcserver

import (
	"context"
	"errors"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// FieldViolation says what is wrong with one request field.
type FieldViolation struct {
	// Field is the field's path in the request, such as "email" or "items[0].quantity".
	Field string
	// Description says what is wrong, for the caller to read.
	Description string
}

// InvalidArgument returns an INVALID_ARGUMENT status error carrying a google.rpc.BadRequest
// detail with one field violation per entry of violations.
func InvalidArgument(message string, violations ...FieldViolation) error {
	st := status.New(codes.InvalidArgument, message)
	br := &errdetails.BadRequest{}
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.Field,
			Description: v.Description,
		})
	}
	withDetails, err := st.WithDetails(br)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// ValidationInterceptor checks each request against the protovalidate rules of its .proto and
// rejects an invalid one with INVALID_ARGUMENT and one google.rpc.BadRequest field violation per
// bad field (several broken rules of one field are joined into one description).
func ValidationInterceptor(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		msg, ok := req.(proto.Message)
		if !ok {
			return nil, status.Error(codes.Internal, "internal error")
		}
		if err := v.Validate(msg); err != nil {
			var verr *protovalidate.ValidationError
			if !errors.As(err, &verr) {
				// A rule that does not compile is a bug in the .proto, not the caller's fault.
				return nil, status.Error(codes.Internal, "internal error")
			}
			return nil, InvalidArgument("invalid request: "+summary(verr), violations(verr)...)
		}
		return handler(ctx, req)
	}
}

func violations(verr *protovalidate.ValidationError) []FieldViolation {
	var out []FieldViolation
	index := map[string]int{}
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		if i, seen := index[field]; seen {
			out[i].Description += "; " + v.Proto.GetMessage()
			continue
		}
		index[field] = len(out)
		out = append(out, FieldViolation{Field: field, Description: v.Proto.GetMessage()})
	}
	return out
}

func summary(verr *protovalidate.ValidationError) string {
	parts := make([]string, 0, len(verr.Violations))
	for _, v := range violations(verr) {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return strings.Join(parts, ", ")
}
