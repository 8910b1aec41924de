package access_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/emptypb" // the demo service's messages

	"github.com/acme/shop/foundation/access"
	// The services' own protos, so that TestEveryRequiredRPCRejectsAMissingToken covers them.
	_ "github.com/acme/shop/protos/gen/go/cart/v1"
	_ "github.com/acme/shop/protos/gen/go/customers/v1"
	shopv1 "github.com/acme/shop/protos/gen/go/shop/v1"
)

// demo is a service registered for these tests whose methods declare, by name: Open public,
// Maybe optional, Closed required, Inner internal, and Default nothing.
var demo = register()

const (
	open    = "/access.test.v1.Demo/Open"
	maybe   = "/access.test.v1.Demo/Maybe"
	closed  = "/access.test.v1.Demo/Closed"
	deflt   = "/access.test.v1.Demo/Default"
	inner   = "/access.test.v1.Demo/Inner"
	unknown = "/access.test.v1.Other/Call"
	check   = "/grpc.health.v1.Health/Check"
)

func register() protoreflect.ServiceDescriptor {
	method := func(name string, a shopv1.Access) *descriptorpb.MethodDescriptorProto {
		md := &descriptorpb.MethodDescriptorProto{
			Name: proto.String(name), InputType: proto.String(".google.protobuf.Empty"), OutputType: proto.String(".google.protobuf.Empty"),
		}
		if a != shopv1.Access_ACCESS_UNSPECIFIED {
			md.Options = &descriptorpb.MethodOptions{}
			proto.SetExtension(md.Options, shopv1.E_Access, a)
		}
		return md
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("access/test/v1/demo.proto"), Package: proto.String("access.test.v1"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto"},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Demo"),
			Method: []*descriptorpb.MethodDescriptorProto{
				method("Open", access.Public), method("Maybe", access.Optional), method("Closed", access.Required), method("Default", shopv1.Access_ACCESS_UNSPECIFIED),
				method("Inner", access.Internal),
			},
		}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fd); err != nil {
		panic(err)
	}
	return fd.Services().Get(0)
}

func TestOf(t *testing.T) {
	for method, want := range map[string]shopv1.Access{
		open:                          access.Public,
		maybe:                         access.Optional,
		closed:                        access.Required,
		deflt:                         access.Required,
		inner:                         access.Internal,
		check:                         access.Public,
		unknown:                       access.Required,
		"/access.test.v1.Demo/Absent": access.Required,
		"malformed":                   access.Required,
	} {
		if got := access.Of(method); got != want {
			t.Errorf("Of(%s) = %v, want %v", method, got, want)
		}
	}
}

func TestMethods(t *testing.T) {
	for level, want := range map[shopv1.Access][]string{
		access.Public:   {open},
		access.Optional: {maybe},
		access.Required: {closed, deflt},
		access.Internal: {inner},
	} {
		if diff := cmp.Diff(want, access.Methods(level, demo)); diff != "" {
			t.Errorf("Methods(%v) (-want +got):\n%s", level, diff)
		}
	}
}

type callerKey struct{}

// errRejected is what the test's authenticate answers for the token "bad".
var errRejected = status.Error(codes.Unauthenticated, "invalid token")

// call runs the interceptor for method with the given authorization values and reports the
// caller the handler saw (empty if none), whether the handler ran, and how often authenticate
// was asked.
func call(t *testing.T, method string, authz ...string) (caller string, handled bool, asked int, err error) {
	t.Helper()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"authorization": authz})
	authenticate := func(ctx context.Context, token string) (context.Context, error) {
		asked++
		if token == "bad" {
			return nil, errRejected
		}
		return context.WithValue(ctx, callerKey{}, "user:"+token), nil
	}
	handler := func(ctx context.Context, _ any) (any, error) {
		handled = true
		caller, _ = ctx.Value(callerKey{}).(string)
		return "ok", nil
	}
	_, err = access.Interceptor(authenticate)(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, handler)
	return caller, handled, asked, err
}

func TestInterceptor(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		authz      []string
		wantCode   codes.Code
		wantCaller string
		wantAsked  int
	}{
		{name: "public without a token", method: open},
		{name: "public ignores a bad token", method: open, authz: []string{"Bearer bad"}},
		{name: "public ignores a malformed header", method: open, authz: []string{"Basic x"}},
		{name: "health is public", method: check},
		{name: "internal without a token", method: inner},
		{name: "internal ignores a bad token", method: inner, authz: []string{"Bearer bad"}},
		{name: "optional without a token", method: maybe},
		{name: "optional with a token", method: maybe, authz: []string{"Bearer alice"}, wantCaller: "user:alice", wantAsked: 1},
		{name: "optional with a bad token", method: maybe, authz: []string{"Bearer bad"}, wantCode: codes.Unauthenticated, wantAsked: 1},
		{name: "optional with a malformed header", method: maybe, authz: []string{"Basic x"}, wantCode: codes.Unauthenticated},
		{name: "required without a token", method: closed, wantCode: codes.Unauthenticated},
		{name: "required with a token", method: closed, authz: []string{"Bearer alice"}, wantCaller: "user:alice", wantAsked: 1},
		{name: "required with a bad token", method: closed, authz: []string{"Bearer bad"}, wantCode: codes.Unauthenticated, wantAsked: 1},
		{name: "required with two headers", method: closed, authz: []string{"Bearer a", "Bearer b"}, wantCode: codes.Unauthenticated},
		{name: "undeclared is required", method: deflt, wantCode: codes.Unauthenticated},
		{name: "unknown service is required", method: unknown, wantCode: codes.Unauthenticated},
		{name: "unknown service with a token", method: unknown, authz: []string{"Bearer alice"}, wantCaller: "user:alice", wantAsked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, handled, asked, err := call(t, tt.method, tt.authz...)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("got %v (%v), want %v", got, err, tt.wantCode)
			}
			if handled != (tt.wantCode == codes.OK) {
				t.Errorf("handler ran: %v, want %v", handled, tt.wantCode == codes.OK)
			}
			if caller != tt.wantCaller {
				t.Errorf("caller %q, want %q", caller, tt.wantCaller)
			}
			if asked != tt.wantAsked {
				t.Errorf("authenticate asked %d times, want %d", asked, tt.wantAsked)
			}
		})
	}
}

func TestInterceptorPassesAuthenticateErrorsOn(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "try later")
	interceptor := access.Interceptor(func(context.Context, string) (context.Context, error) { return nil, unavailable })
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer tok"))
	_, err := interceptor(ctx, nil, &grpc.UnaryServerInfo{FullMethod: closed}, func(context.Context, any) (any, error) {
		t.Error("handler ran for a rejected call")
		return nil, nil
	})
	if !errors.Is(err, unavailable) {
		t.Errorf("got %v, want %v", err, unavailable)
	}
}

// TestEveryRequiredRPCRejectsAMissingToken walks every service registered in this binary (the
// customers and cart protos among them): an RPC that declares neither public nor optional
// access must reject a call without a token, and never ask authenticate.
func TestEveryRequiredRPCRejectsAMissingToken(t *testing.T) {
	var services []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			services = append(services, fd.Services().Get(i))
		}
		return true
	})
	required := access.Methods(access.Required, services...)
	if len(required) < 10 {
		t.Fatalf("only %d RPCs require a token: are the services' protos linked in?", len(required))
	}
	for _, method := range required {
		if access.Of(method) != access.Required {
			t.Errorf("Of(%s) = %v, but its service lists it as required", method, access.Of(method))
		}
		if _, handled, asked, err := call(t, method); status.Code(err) != codes.Unauthenticated || handled || asked != 0 {
			t.Errorf("%s without a token: %v (handler ran %v, authenticate asked %d times), want Unauthenticated", method, err, handled, asked)
		}
	}
}

// TestInternalRPCsExist walks the services' own protos: customers' ValidateToken,
// ValidateTokens and ExistingUsers are internal (cart calls them; request-id lists are
// honoured on them only),
// and no internal RPC has a REST route.
func TestInternalRPCsExist(t *testing.T) {
	var services []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "access.test.") {
			for i := range fd.Services().Len() {
				services = append(services, fd.Services().Get(i))
			}
		}
		return true
	})
	internal := access.Methods(access.Internal, services...)
	want := []string{"/customers.v1.AuthService/ValidateToken", "/customers.v1.AuthService/ValidateTokens", "/customers.v1.UserService/ExistingUsers"}
	if diff := cmp.Diff(want, slices.Sorted(slices.Values(internal))); diff != "" {
		t.Errorf("internal RPCs (-want +got):\n%s", diff)
	}
	for _, method := range internal {
		if proto.HasExtension(access.Method(method).Options(), annotations.E_Http) {
			t.Errorf("%s is internal but has a REST route", method)
		}
	}
}
