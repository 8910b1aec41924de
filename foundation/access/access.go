// Package access enforces who may call each RPC, as the RPC declares it in its .proto with the
// `(shop.v1.access)` method option: ACCESS_PUBLIC, ACCESS_OPTIONAL, ACCESS_INTERNAL (other
// services only), or ACCESS_REQUIRED (the default). The declarations are read from the registered descriptors once, when the
// interceptor is built; the services supply only how a token is checked. It is a unary
// interceptor: the only streaming RPCs served (reflection, health's Watch) carry no user data.
package access

import (
	"context"
	"fmt"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/rpcs"
	shopv1 "github.com/acme/shop/protos/gen/go/shop/v1"
)

// The access levels an RPC can declare; Of never returns ACCESS_UNSPECIFIED.
const (
	Required = shopv1.Access_ACCESS_REQUIRED
	Optional = shopv1.Access_ACCESS_OPTIONAL
	Public   = shopv1.Access_ACCESS_PUBLIC
	// Internal RPCs are for other services: no REST route, and in production only those
	// services reach them (mutual TLS, NetworkPolicy). Like public ones, they look at no token.
	Internal = shopv1.Access_ACCESS_INTERNAL
)

// healthService is the one service outside our protos that anyone may call (load balancers and
// orchestrators probe it without a token); its .proto is not ours to annotate.
var healthService = protoreflect.FullName(healthpb.Health_ServiceDesc.ServiceName)

// AuthenticateFunc checks an access token and returns ctx carrying the caller it belongs to,
// or a status error that rejects the call (UNAUTHENTICATED for a token that is not valid).
type AuthenticateFunc func(ctx context.Context, token string) (context.Context, error)

// Interceptor enforces every RPC's declared access: a public or internal RPC runs without its
// token being looked at (who may reach an internal one is the transport's to enforce); an optional one is authenticated when the call has an authorization header; any
// other RPC, including one of a service that declares nothing, must carry a valid token
// (missing: UNAUTHENTICATED). Tokens are read with grpcserver.BearerToken and checked with
// authenticate (a service implementing go-grpc-middleware's AuthFuncOverride would replace it;
// ours do not). The declarations are read from protoregistry.GlobalFiles now, so the services'
// generated packages must be linked in (they are, by registering the services).
func Interceptor(authenticate AuthenticateFunc) grpc.UnaryServerInterceptor {
	levels := declared(protoregistry.GlobalFiles)
	needsAuth := selector.MatchFunc(func(ctx context.Context, c interceptors.CallMeta) bool {
		switch levels.of(c.Service, c.Method) {
		case Public, Internal:
			return false
		case Optional:
			return len(metadata.ValueFromIncomingContext(ctx, "authorization")) > 0
		default:
			return true
		}
	})
	return selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(func(ctx context.Context) (context.Context, error) {
		token, present, err := grpcserver.BearerToken(ctx)
		if err != nil {
			return nil, err
		}
		if !present {
			return nil, status.Error(codes.Unauthenticated, "missing bearer token")
		}
		return authenticate(ctx, token)
	}), needsAuth)
}

// Of returns the access the RPC fullMethod ("/customers.v1.AuthService/Login") declares:
// Public for the health service, Required for an RPC that declares none or that is not
// registered at all.
func Of(fullMethod string) shopv1.Access {
	md := Method(fullMethod)
	if md == nil {
		return Required
	}
	return declaredBy(md)
}

// Method returns the registered descriptor of the RPC fullMethod
// ("/customers.v1.AuthService/Login"), or nil.
func Method(fullMethod string) protoreflect.MethodDescriptor {
	service, method, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil
	}
	return sd.Methods().ByName(protoreflect.Name(method))
}

// Methods returns the full method names of the RPCs of services that declare level, in
// declaration order.
func Methods(level shopv1.Access, services ...protoreflect.ServiceDescriptor) []string {
	var out []string
	for _, sd := range services {
		methods := sd.Methods()
		for i := range methods.Len() {
			if md := methods.Get(i); declaredBy(md) == level {
				out = append(out, fmt.Sprintf("/%s/%s", sd.FullName(), md.Name()))
			}
		}
	}
	return out
}

// declaredBy returns the access md declares, Required when it declares none; the health
// service's RPCs are Public.
func declaredBy(md protoreflect.MethodDescriptor) shopv1.Access {
	if md.Parent().FullName() == healthService {
		return Public
	}
	a, _ := proto.GetExtension(md.Options(), shopv1.E_Access).(shopv1.Access)
	if a == shopv1.Access_ACCESS_UNSPECIFIED {
		return Required
	}
	return a
}

// levels holds the declared access of every RPC that is not Required, by service and method
// name, so that a call costs two map lookups and no allocation.
type levels map[string]map[string]shopv1.Access

func declared(files *protoregistry.Files) levels {
	l := levels{}
	for md := range rpcs.All(files) {
		a := declaredBy(md)
		if a == Required {
			continue
		}
		service := string(md.Parent().FullName())
		if l[service] == nil {
			l[service] = map[string]shopv1.Access{}
		}
		l[service][string(md.Name())] = a
	}
	return l
}

func (l levels) of(service, method string) shopv1.Access {
	if a, ok := l[service][method]; ok {
		return a
	}
	return Required
}
