package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/shop/foundation/grpcserver"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

// TestWrites: the RPCs that write are those whose REST mapping is not a GET.
func TestWrites(t *testing.T) {
	writes := grpcserver.Writes(protoregistry.GlobalFiles)
	for method, want := range map[string]bool{
		cartv1.CartService_AddItem_FullMethodName:          true,
		cartv1.CartService_UpdateItem_FullMethodName:       true,
		cartv1.CartService_RemoveItem_FullMethodName:       true,
		cartv1.CartService_ClearCart_FullMethodName:        true,
		cartv1.ProductService_CreateProduct_FullMethodName: true,
		cartv1.ProductService_UpdateProduct_FullMethodName: true,
		cartv1.ProductService_DeleteProduct_FullMethodName: true,
		cartv1.CartService_GetCart_FullMethodName:          false,
		cartv1.ProductService_GetProduct_FullMethodName:    false,
		cartv1.ProductService_ListProducts_FullMethodName:  false,
	} {
		if writes[method] != want {
			t.Errorf("%s writes: %t, want %t", method, writes[method], want)
		}
	}
}

// TestLimitWrites: a caller's writes are counted under their own key, and one over the limit
// is RESOURCE_EXHAUSTED and runs nothing; reads and calls without a caller are not counted.
func TestLimitWrites(t *testing.T) {
	var taken []string
	wait := time.Duration(0)
	limit := grpcserver.LimitWrites(func(_ context.Context, key string) (time.Duration, error) {
		taken = append(taken, key)
		return wait, nil
	}, func(ctx context.Context) (string, bool) {
		c, ok := ctx.Value(callerKey{}).(string)
		return c, ok
	})
	runs := 0
	handler := func(context.Context, any) (any, error) { runs++; return "ok", nil }
	add := &grpc.UnaryServerInfo{FullMethod: cartv1.CartService_AddItem_FullMethodName}
	get := &grpc.UnaryServerInfo{FullMethod: cartv1.CartService_GetCart_FullMethodName}
	alice := context.WithValue(t.Context(), callerKey{}, "alice")

	for _, call := range []struct {
		ctx  context.Context
		info *grpc.UnaryServerInfo
	}{{alice, add}, {alice, get}, {t.Context(), add}} {
		if _, err := limit(call.ctx, nil, call.info, handler); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 3 || len(taken) != 1 || taken[0] != "writes:alice" {
		t.Errorf("%d runs, taken %v; want 3 runs and one write of alice counted", runs, taken)
	}
	wait = time.Minute
	if _, err := limit(alice, nil, add, handler); status.Code(err) != codes.ResourceExhausted || runs != 3 {
		t.Errorf("a write over the limit = %v after %d runs, want RESOURCE_EXHAUSTED after 3", err, runs)
	}
}

type callerKey struct{}
