package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"go.uber.org/mock/gomock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/access"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/auth/authmock"
	"github.com/acme/shop/cart-svc/internal/cart"
)

// call runs the interceptor for method with the given authorization values and reports what
// the handler saw.
func call(t *testing.T, v auth.Validator, method string, authz ...string) (cart.Caller, bool, error) {
	t.Helper()
	ctx := context.Background()
	if len(authz) > 0 {
		md := metadata.MD{}
		for _, a := range authz {
			md.Append("authorization", a)
		}
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	var seen cart.Caller
	var called bool
	handler := func(ctx context.Context, _ any) (any, error) {
		called = true
		seen, _ = auth.CallerFrom(ctx)
		return "ok", nil
	}
	_, err := auth.Interceptor(v, slog.New(slog.DiscardHandler))(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, handler)
	return seen, called, err
}

const getCart = cartv1.CartService_GetCart_FullMethodName

func TestInterceptorMapsValidatorAnswers(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
	}{
		{"valid", nil, codes.OK},
		{"invalid token", auth.ErrInvalidToken, codes.Unauthenticated},
		{"customers unavailable", errors.Join(auth.ErrUnavailable, errors.New("connection refused")), codes.Unavailable},
		// customers did not answer within the validator's timeout: customers', not the caller's.
		{"customers too slow", fmt.Errorf("%w: no answer within 2s: %w", auth.ErrUnavailable, context.DeadlineExceeded), codes.Unavailable},
		{"anything else", errors.New("customers said PERMISSION_DENIED: secret detail"), codes.Internal},
		// A client that hung up, or ran out of time, is not a server error.
		{"caller cancelled", context.Canceled, codes.Canceled},
		{"caller's deadline", context.DeadlineExceeded, codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctrl := gomock.NewController(t)
			v := authmock.NewMockValidator(ctrl)
			want := cart.Caller{UserID: "u1", IsAdmin: true}
			v.EXPECT().Validate(gomock.Any(), "tok").Return(want, tt.err)
			got, called, err := call(t, v, getCart, "Bearer tok")
			if code := status.Code(err); code != tt.wantCode {
				t.Fatalf("code %v, want %v", code, tt.wantCode)
			}
			if tt.err == nil && (!called || got != want) {
				t.Errorf("handler called %v with %+v, want %+v", called, got, want)
			}
			if tt.err != nil && called {
				t.Error("handler ran for a rejected call")
			}
			if tt.wantCode == codes.Internal && status.Convert(err).Message() != "internal error" {
				t.Errorf("INTERNAL message %q leaks details", status.Convert(err).Message())
			}
		})
	}
}

func TestInterceptorRejectsBadHeadersWithoutAsking(t *testing.T) {
	for name, authz := range map[string][]string{
		"missing":      nil,
		"no scheme":    {"tok"},
		"basic":        {"Basic dXNlcjpwYXNz"},
		"empty bearer": {"Bearer "},
		"two headers":  {"Bearer a", "Bearer b"},
	} {
		t.Run(name, func(t *testing.T) {
			v := authmock.NewMockValidator(gomock.NewController(t)) // no calls expected
			if _, called, err := call(t, v, getCart, authz...); status.Code(err) != codes.Unauthenticated || called {
				t.Errorf("got %v (handler called %v), want Unauthenticated", err, called)
			}
		})
	}
}

// services are cart's gRPC services, whose RPCs declare their access in the .proto.
var services = []protoreflect.ServiceDescriptor{
	cartv1.File_cart_v1_product_proto.Services().ByName("ProductService"),
	cartv1.File_cart_v1_cart_proto.Services().ByName("CartService"),
}

func TestPublicMethodsNeverAsk(t *testing.T) {
	public := append(access.Methods(access.Public, services...), "/"+healthpb.Health_ServiceDesc.ServiceName+"/Check")
	if len(public) < 2 {
		t.Fatalf("public RPCs %v: the catalog's are missing", public)
	}
	for _, m := range public {
		t.Run(m, func(t *testing.T) {
			v := authmock.NewMockValidator(gomock.NewController(t)) // no calls expected
			if _, called, err := call(t, v, m, "Bearer whatever"); err != nil || !called {
				t.Errorf("public %s: %v, handler called %v", m, err, called)
			}
		})
	}
}

// TestEveryOtherRPCNeedsAToken walks the generated service descriptors: an RPC that does not
// declare itself public or optional must reject a call without a token.
func TestEveryOtherRPCNeedsAToken(t *testing.T) {
	required := access.Methods(access.Required, services...)
	if len(required) == 0 {
		t.Fatal("no RPC requires a token")
	}
	for _, method := range required {
		v := authmock.NewMockValidator(gomock.NewController(t))
		if _, called, err := call(t, v, method); status.Code(err) != codes.Unauthenticated || called {
			t.Errorf("%s without a token: %v (handler called %v), want Unauthenticated", method, err, called)
		}
	}
}
