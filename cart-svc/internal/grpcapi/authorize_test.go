package grpcapi_test

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/shop/foundation/idempotency"
	"github.com/acme/shop/foundation/permission"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/grpcapi"
)

// TestAuthorizeKnowsEveryIdempotentRPC holds Authorize, which idempotency asks before it
// replays an answer, together with the RPCs that declare `(shop.v1.idempotent)`: it has a rule
// for the request of each, one that admits an admin.
func TestAuthorizeKnowsEveryIdempotentRPC(t *testing.T) {
	ctx := auth.WithCaller(t.Context(), admin)
	found := 0
	for _, fd := range []protoreflect.FileDescriptor{cartv1.File_cart_v1_product_proto, cartv1.File_cart_v1_cart_proto} {
		services := fd.Services()
		for i := range services.Len() {
			methods := services.Get(i).Methods()
			for j := range methods.Len() {
				md := methods.Get(j)
				if !idempotency.Idempotent(md) {
					continue
				}
				found++
				mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				if err := grpcapi.Authorize(ctx, mt.New().Interface()); err != nil {
					t.Errorf("%s: Authorize(admin) = %v, want a rule that admits an admin", md.FullName(), err)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no idempotent RPC found")
	}
	if err := grpcapi.Authorize(ctx, &cartv1.GetCartRequest{}); err == nil {
		t.Error("Authorize of a request it has no rule for = nil, want a refusal")
	}
}

// TestAuthorize: the rules are the domain's, applied to whoever calls now.
func TestAuthorize(t *testing.T) {
	tests := []struct {
		name   string
		caller cart.Caller
		req    any
		want   error
	}{
		{"a user adds to their own cart", alice, &cartv1.AddItemRequest{UserId: "me"}, nil},
		{"a user adds to their own cart by ID", alice, &cartv1.AddItemRequest{UserId: alice.UserID}, nil},
		{"a user adds to another's cart", bob, &cartv1.AddItemRequest{UserId: alice.UserID}, permission.ErrDenied},
		{"an admin adds to another's cart", admin, &cartv1.AddItemRequest{UserId: alice.UserID}, nil},
		{"a user creates a product", alice, &cartv1.CreateProductRequest{}, permission.ErrDenied},
		{"an admin creates a product", admin, &cartv1.CreateProductRequest{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := grpcapi.Authorize(auth.WithCaller(t.Context(), tt.caller), tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Authorize = %v, want %v", err, tt.want)
			}
		})
	}
	if err := grpcapi.Authorize(t.Context(), &cartv1.AddItemRequest{UserId: "me"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Authorize without a caller = %v, want UNAUTHENTICATED", err)
	}
}
