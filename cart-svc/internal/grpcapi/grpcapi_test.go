package grpcapi_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/pagetoken"
	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/service"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/cartdb"
	"github.com/acme/shop/cart-svc/internal/grpcapi"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

// maxQuantity is the quantity limit of the service under test, lower than the default so that
// the configured limit, not a typed 99, is what the tests see.
const maxQuantity = 5

// The callers the fake validator knows, by token.
var (
	admin  = cart.Caller{UserID: "0195c3a0-0000-7000-8000-0000000000ad", IsAdmin: true}
	alice  = cart.Caller{UserID: "0195c3a0-0000-7000-8000-0000000000a1"}
	bob    = cart.Caller{UserID: "0195c3a0-0000-7000-8000-0000000000b0"}
	tokens = validator{"admin-token": admin, "alice-token": alice, "bob-token": bob}
)

// validator is a fake auth.Validator: customers is not needed to know who holds a token.
type validator map[string]cart.Caller

func (v validator) Validate(_ context.Context, token string) (cart.Caller, error) {
	c, ok := v[token]
	if !ok {
		return cart.Caller{}, auth.ErrInvalidToken
	}
	return c, nil
}

type clients struct {
	products cartv1.ProductServiceClient
	carts    cartv1.CartServiceClient
}

// start serves the handlers on a fresh SQLite database through the production interceptor
// chain (grpcserver with cart's auth interceptor and error map), over a loopback connection.
func start(t *testing.T) clients {
	t.Helper()
	store := dbtest.Store(t, "sqlite", migrations.All(false), cartdb.New)
	svc, err := cart.NewService(store, cart.Options{MaxQuantity: maxQuantity, NewID: service.NewID})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	opts := grpcserver.Options{Logger: log, Auth: auth.Interceptor(tokens, log), Errors: grpcapi.Errors, Unavailable: database.IsUnavailable}
	_, conn := grpctest.Serve(t, opts, func(srv grpc.ServiceRegistrar) {
		cartv1.RegisterProductServiceServer(srv, grpcapi.NewProductServer(svc, pagetoken.New(secret.New("test page-token key"), "test")))
		cartv1.RegisterCartServiceServer(srv, grpcapi.NewCartServer(svc))
	})
	return clients{products: cartv1.NewProductServiceClient(conn), carts: cartv1.NewCartServiceClient(conn)}
}

func createProduct(t *testing.T, c clients, name, price string) *cartv1.Product {
	t.Helper()
	res, err := c.products.CreateProduct(grpctest.As(t, "admin-token"), &cartv1.CreateProductRequest{Name: name, Price: price})
	if err != nil {
		t.Fatalf("create product %q: %v", name, err)
	}
	return res.GetProduct()
}

func TestProductConversion(t *testing.T) {
	c := start(t)
	got := createProduct(t, c, "Kettle", "12.5")
	grpctest.CheckCreated(t, &cartv1.Product{Name: "Kettle", Price: "12.50", CurrencyCode: "USD"}, got)
	read, err := c.products.GetProduct(t.Context(), &cartv1.GetProductRequest{ProductId: strings.ToUpper(got.GetId())})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read.GetProduct(), protocmp.Transform()); diff != "" {
		t.Errorf("product read back by its upper-case ID (-created +read):\n%s", diff)
	}
}

func TestCartConversionAndMe(t *testing.T) {
	c := start(t)
	kettle := createProduct(t, c, "Kettle", "42.10")
	mug := createProduct(t, c, "Mug", "0.35")
	if _, err := c.carts.AddItem(grpctest.As(t, "alice-token"), &cartv1.AddItemRequest{UserId: "me", ProductId: mug.GetId(), Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.carts.AddItem(grpctest.As(t, "alice-token"), &cartv1.AddItemRequest{UserId: alice.UserID, ProductId: kettle.GetId(), Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	want := &cartv1.Cart{
		UserId: alice.UserID,
		Items: []*cartv1.CartItem{
			{ProductId: mug.GetId(), Name: "Mug", UnitPrice: "0.35", Quantity: 3, LineTotal: "1.05"},
			{ProductId: kettle.GetId(), Name: "Kettle", UnitPrice: "42.10", Quantity: 2, LineTotal: "84.20"},
		},
		TotalQuantity: 5, TotalPrice: "85.25", CurrencyCode: "USD",
	}
	// Every way of naming Alice's cart that the caller may use shows the same cart; a
	// stranger's way is PERMISSION_DENIED, whether that cart exists or not.
	tests := []struct {
		name, token, userID string
		want                codes.Code
	}{
		{"me", "alice-token", "me", codes.OK},
		{"own ID in upper case", "alice-token", strings.ToUpper(alice.UserID), codes.OK},
		{"admin, by ID", "admin-token", alice.UserID, codes.OK},
		{"another user", "bob-token", alice.UserID, codes.PermissionDenied},
		{"another, unknown user", "bob-token", uuid.NewString(), codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.carts.GetCart(grpctest.As(t, tt.token), &cartv1.GetCartRequest{UserId: tt.userID})
			grpctest.CheckError(t, err, tt.want)
			if diff := cmp.Diff(want, res.GetCart(), protocmp.Transform(), protocmp.IgnoreFields(&cartv1.Cart{}, "etag")); err == nil && diff != "" {
				t.Errorf("cart (-want +got):\n%s", diff)
			}
		})
	}
	res, err := c.carts.GetCart(grpctest.As(t, "bob-token"), &cartv1.GetCartRequest{UserId: "me"})
	if diff := cmp.Diff(&cartv1.Cart{UserId: bob.UserID, TotalPrice: "0.00", CurrencyCode: "USD"}, res.GetCart(), protocmp.Transform(), protocmp.IgnoreFields(&cartv1.Cart{}, "etag")); err != nil || diff != "" {
		t.Errorf("a cart never filled: %v (-want +got):\n%s", err, diff)
	}
}

// TestErrors checks the status code, and the BadRequest fields of INVALID_ARGUMENT, of every
// way a call can fail, whether the rule lives in the proto (protovalidate), in the domain or in
// the store. The calls run in the table's order.
func TestErrors(t *testing.T) {
	c := start(t)
	p := createProduct(t, c, "Kettle", "10")
	inCart := createProduct(t, c, "Mug", "1")
	if _, err := c.carts.AddItem(grpctest.As(t, "alice-token"), &cartv1.AddItemRequest{UserId: "me", ProductId: inCart.GetId(), Quantity: maxQuantity - 1}); err != nil {
		t.Fatal(err)
	}
	anonymous, byAlice, byBob, byAdmin := t.Context(), grpctest.As(t, "alice-token"), grpctest.As(t, "bob-token"), grpctest.As(t, "admin-token")
	add := func(productID string, quantity int32) error {
		return grpctest.Err(c.carts.AddItem(byAlice, &cartv1.AddItemRequest{UserId: "me", ProductId: productID, Quantity: quantity}))
	}
	set := func(productID string, quantity int32) error {
		return grpctest.Err(c.carts.UpdateItem(byAlice, &cartv1.UpdateItemRequest{UserId: "me", ProductId: productID, Quantity: quantity}))
	}
	create := func(ctx context.Context, req *cartv1.CreateProductRequest) error {
		return grpctest.Err(c.products.CreateProduct(ctx, req))
	}
	update := func(req *cartv1.UpdateProductRequest) error {
		return grpctest.Err(c.products.UpdateProduct(byAdmin, req))
	}
	str := proto.String
	tests := []struct {
		name   string
		err    error
		want   codes.Code
		fields []string
	}{
		{"no token", grpctest.Err(c.carts.GetCart(anonymous, &cartv1.GetCartRequest{UserId: "me"})), codes.Unauthenticated, nil},
		{"unknown token", grpctest.Err(c.carts.GetCart(grpctest.As(t, "forged-token"), &cartv1.GetCartRequest{UserId: "me"})), codes.Unauthenticated, nil},
		{"create as non-admin", create(byAlice, &cartv1.CreateProductRequest{Name: "X", Price: "1"}), codes.PermissionDenied, nil},
		{"delete as non-admin", grpctest.Err(c.products.DeleteProduct(byAlice, &cartv1.DeleteProductRequest{ProductId: p.GetId()})), codes.PermissionDenied, nil},
		{"blank name (domain)", create(byAdmin, &cartv1.CreateProductRequest{Name: " \t ", Price: "1"}), codes.InvalidArgument, []string{"name"}},
		{"blank name in a change (domain)", update(&cartv1.UpdateProductRequest{ProductId: p.GetId(), Name: str("  ")}), codes.InvalidArgument, []string{"name"}},
		{"empty name in a change (proto)", update(&cartv1.UpdateProductRequest{ProductId: p.GetId(), Name: str("")}), codes.InvalidArgument, []string{"name"}},
		{"name, description and price at once (proto)", create(byAdmin, &cartv1.CreateProductRequest{
			Name: strings.Repeat("n", 201), Description: strings.Repeat("d", 2001), Price: "0.001",
		}), codes.InvalidArgument, []string{"name", "description", "price"}},
		{"price zero (proto)", update(&cartv1.UpdateProductRequest{ProductId: p.GetId(), Price: str("0.00")}), codes.InvalidArgument, []string{"price"}},
		{"unknown product", grpctest.Err(c.products.GetProduct(anonymous, &cartv1.GetProductRequest{ProductId: uuid.NewString()})), codes.NotFound, nil},
		{"change an unknown product", update(&cartv1.UpdateProductRequest{ProductId: uuid.NewString(), Name: str("X")}), codes.NotFound, nil},
		{"malformed product ID (proto)", grpctest.Err(c.products.GetProduct(anonymous, &cartv1.GetProductRequest{ProductId: "nope"})), codes.InvalidArgument, []string{"product_id"}},
		{"quantity zero (proto)", add(p.GetId(), 0), codes.InvalidArgument, []string{"quantity"}},
		{"quantity over the configured limit (domain)", add(p.GetId(), maxQuantity+1), codes.InvalidArgument, []string{"quantity"}},
		{"merged quantity over the limit (store)", add(inCart.GetId(), 2), codes.InvalidArgument, []string{"quantity"}},
		{"set quantity over the limit (domain)", set(inCart.GetId(), maxQuantity+1), codes.InvalidArgument, []string{"quantity"}},
		{"negative quantity (proto)", set(inCart.GetId(), -1), codes.InvalidArgument, []string{"quantity"}},
		{"add an unknown product", add(uuid.NewString(), 1), codes.NotFound, nil},
		{"change a product not in the cart", set(p.GetId(), 1), codes.NotFound, nil},
		{"remove a product not in the cart", grpctest.Err(c.carts.RemoveItem(byAlice, &cartv1.RemoveItemRequest{UserId: "me", ProductId: p.GetId()})), codes.NotFound, nil},
		{"clear another user's cart", grpctest.Err(c.carts.ClearCart(byBob, &cartv1.ClearCartRequest{UserId: alice.UserID})), codes.PermissionDenied, nil},
		{"malformed user ID (proto)", grpctest.Err(c.carts.GetCart(byAlice, &cartv1.GetCartRequest{UserId: "you"})), codes.InvalidArgument, []string{"user_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { grpctest.CheckError(t, tt.err, tt.want, tt.fields...) })
	}
	res, err := c.carts.GetCart(byAlice, &cartv1.GetCartRequest{UserId: "me"})
	if err != nil || res.GetCart().GetTotalQuantity() != maxQuantity-1 {
		t.Errorf("after the rejected calls: %v, %v; want the cart unchanged", res.GetCart(), err)
	}
}

// TestListProductsPageTokens pages through a search: the token of the first page continues that
// search only, and the second page is the last.
func TestListProductsPageTokens(t *testing.T) {
	c := start(t)
	for _, name := range []string{"Mug A", "Kettle", "Mug B", "Mug C"} {
		createProduct(t, c, name, "1")
	}
	names := func(res *cartv1.ListProductsResponse) []string {
		var out []string
		for _, p := range res.GetProducts() {
			out = append(out, p.GetName())
		}
		return out
	}
	first, err := c.products.ListProducts(t.Context(), &cartv1.ListProductsRequest{Search: "mug", PageSize: 2})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v; want a next page token", first, err)
	}
	second, err := c.products.ListProducts(t.Context(), &cartv1.ListProductsRequest{Search: "mug", PageSize: 2, PageToken: first.GetNextPageToken()})
	if err != nil || second.GetNextPageToken() != "" {
		t.Fatalf("second page: %v, %v; want the last page", second, err)
	}
	if diff := cmp.Diff([]string{"Mug A", "Mug B", "Mug C"}, append(names(first), names(second)...)); diff != "" {
		t.Errorf("products of both pages (-want +got):\n%s", diff)
	}
	for _, req := range []*cartv1.ListProductsRequest{
		{Search: "kettle", PageToken: first.GetNextPageToken()},
		{PageToken: "Zm9yZ2Vk"},
	} {
		_, err := c.products.ListProducts(t.Context(), req)
		grpctest.CheckError(t, err, codes.InvalidArgument, "page_token")
	}
}
