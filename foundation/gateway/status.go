package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv3/options"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// successExtension is the OpenAPI extension, set per RPC in the .proto, that names the HTTP
// status of a successful call when it is not 200. The same annotation documents the status in
// the OpenAPI document (tools/openapi-finalize), so the two cannot drift apart.
const successExtension = "x-success-status"

// statusCodes maps full gRPC method names ("/customers.v1.UserService/CreateUser") to the HTTP
// status of their success.
type statusCodes map[string]int

func successStatuses(services []protoreflect.ServiceDescriptor) (statusCodes, error) {
	codes := statusCodes{}
	for _, sd := range services {
		methods := sd.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			op, ok := proto.GetExtension(md.Options(), options.E_Openapiv3Operation).(*options.Operation)
			if !ok || op == nil {
				continue
			}
			v, ok := op.GetExtensions()[successExtension]
			if !ok {
				continue
			}
			code := int(v.GetNumberValue())
			if code != http.StatusCreated && code != http.StatusNoContent {
				return nil, fmt.Errorf("%s: %s must be 201 or 204, got %v", md.FullName(), successExtension, v)
			}
			codes[fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())] = code
		}
	}
	return codes, nil
}

// forward sets the success status of the RPC being answered. For 204 the gateway's write of the
// (empty) body is refused by net/http, so the response has no body.
func (c statusCodes) forward(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	method, ok := runtime.RPCMethod(ctx)
	if !ok {
		return nil
	}
	switch code := c[method]; code {
	case http.StatusNoContent:
		w.Header().Del("Content-Type")
		w.WriteHeader(code)
	case http.StatusCreated:
		w.WriteHeader(code)
	}
	return nil
}
