package grpcserver

import (
	"context"
	"errors"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/validation"
)

// validationInterceptor checks each request against the protovalidate rules of its .proto and
// rejects an invalid one with a *validation.Error holding one violation per bad field (several
// broken rules of one field are joined into one description), which errorsInterceptor answers
// like a domain's own.
func validationInterceptor(v protovalidate.Validator) grpc.UnaryServerInterceptor {
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
			return nil, &validation.Error{Violations: violations(verr)}
		}
		return handler(ctx, req)
	}
}

func violations(verr *protovalidate.ValidationError) []validation.Violation {
	var out []validation.Violation
	index := map[string]int{}
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		if i, seen := index[field]; seen {
			out[i].Description += "; " + v.Proto.GetMessage()
			continue
		}
		index[field] = len(out)
		out = append(out, validation.Violation{Field: field, Description: v.Proto.GetMessage()})
	}
	return out
}
