package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/grpcserver"
	shopv1 "github.com/acme/shop/protos/gen/go/shop/v1"
)

// reasonStatus is the HTTP status of the errors whose ErrorInfo reason asks for one that
// their gRPC code does not map to.
var reasonStatus = map[string]int{
	grpcserver.ReasonETagMismatch:         http.StatusPreconditionFailed,
	grpcserver.ReasonIdempotencyKeyReused: http.StatusUnprocessableEntity,
	grpcserver.ReasonIdempotencyKeyInUse:  http.StatusConflict,
}

// errorHandler is grpc-gateway's error handler with the HTTP status of reasonStatus for the
// errors that carry one of its reasons.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		if code, ok := reasonStatus[grpcserver.Reason(st)]; ok {
			err = &runtime.HTTPStatusError{HTTPStatus: code, Err: err}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// incomingHeader passes the request headers of HTTP's client semantics to the services as
// metadata (lower case), besides grpc-gateway's defaults (Authorization, Grpc-Metadata-*).
func incomingHeader(key string) (string, bool) {
	switch k := http.CanonicalHeaderKey(key); k {
	case "Idempotency-Key", "If-Match", "If-None-Match":
		return strings.ToLower(k), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// statusCodes maps full gRPC method names ("/customers.v1.UserService/CreateUser") to the HTTP
// status of their success, for the RPCs that do not answer 200.
type statusCodes map[string]int

// successStatuses reads the success status of every method of services from its
// (shop.v1.success) option, the same declaration the OpenAPI documents take theirs from
// (tools/openapi-finalize), so that the two cannot drift apart.
func successStatuses(services []protoreflect.ServiceDescriptor) statusCodes {
	codes := statusCodes{}
	for _, sd := range services {
		methods := sd.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			if code := successStatus(md); code != http.StatusOK {
				codes[fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())] = code
			}
		}
	}
	return codes
}

// successStatus returns the HTTP status md's (shop.v1.success) option declares: the number of
// the declared value, which is the status, or 200 for no option, SUCCESS_UNSPECIFIED, or a
// number the enum does not name.
func successStatus(md protoreflect.MethodDescriptor) int {
	s, _ := proto.GetExtension(md.Options(), shopv1.E_Success).(shopv1.Success)
	if s == shopv1.Success_SUCCESS_UNSPECIFIED || s.Descriptor().Values().ByNumber(s.Number()) == nil {
		return http.StatusOK
	}
	return int(s)
}

// forward sets the success status of the RPC being answered. For 204 the gateway's write of the
// (empty) body is refused by net/http, so the response has no body.
func (c statusCodes) forward(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	method, ok := runtime.RPCMethod(ctx)
	if !ok {
		return nil
	}
	code, ok := c[method]
	if !ok {
		return nil
	}
	if code == http.StatusNoContent {
		w.Header().Del("Content-Type")
	}
	w.WriteHeader(code)
	return nil
}
