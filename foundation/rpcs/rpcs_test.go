package rpcs_test

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/shop/foundation/rpcs"
	_ "github.com/acme/shop/protos/gen/go/cart/v1"
)

func TestAll(t *testing.T) {
	names := map[string]bool{}
	for md := range rpcs.All(protoregistry.GlobalFiles) {
		names[rpcs.FullName(md)] = true
	}
	for _, want := range []string{"/cart.v1.CartService/AddItem", "/cart.v1.ProductService/ListProducts"} {
		if !names[want] {
			t.Errorf("All does not yield %s (%d methods)", want, len(names))
		}
	}
	n := 0
	for range rpcs.All(protoregistry.GlobalFiles) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("All went on after the loop stopped")
	}
}
