package grpcapi_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/pagetoken"
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
// chain (grpcserver with cart's auth interceptor and error map), over bufconn.
func start(t *testing.T) clients {
	t.Helper()
	db := dbtest.SQLite(t)
	if err := database.Migrate(context.Background(), db, "cart", migrations.All(false)); err != nil {
		t.Fatal(err)
	}
	store, err := cartdb.New(db)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cart.NewService(store, cart.Options{MaxQuantity: maxQuantity, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv, err := grpcserver.New(grpcserver.Options{
		Logger: log, Auth: auth.Interceptor(tokens, log),
		Errors: grpcapi.Errors, Unavailable: database.IsUnavailable,
	})
	if err != nil {
		t.Fatal(err)
	}
	cartv1.RegisterProductServiceServer(srv, grpcapi.NewProductServer(svc, pagetoken.New([]byte("test page-token key"))))
	cartv1.RegisterCartServiceServer(srv, grpcapi.NewCartServer(svc))

	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.GRPC.Serve(lis) }()
	t.Cleanup(srv.GRPC.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return clients{products: cartv1.NewProductServiceClient(conn), carts: cartv1.NewCartServiceClient(conn)}
}

// as returns a context whose calls carry token ("" for none).
func as(t *testing.T, token string) context.Context {
	if token == "" {
		return t.Context()
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
}

// badRequestFields returns the fields of the google.rpc.BadRequest detail of err.
func badRequestFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func createProduct(t *testing.T, c clients, name, price string) *cartv1.Product {
	t.Helper()
	res, err := c.products.CreateProduct(as(t, "admin-token"), &cartv1.CreateProductRequest{Name: name, Price: price})
	if err != nil {
		t.Fatalf("create product %q: %v", name, err)
	}
	return res.GetProduct()
}

// ignoreGenerated leaves out of a comparison what the server makes up: IDs and timestamps.
var ignoreGenerated = protocmp.IgnoreFields(&cartv1.Product{}, "id", "created_at", "updated_at")

func TestProductConversion(t *testing.T) {
	c := start(t)
	got := createProduct(t, c, "Kettle", "12.5")
	want := &cartv1.Product{Name: "Kettle", Price: "12.50", CurrencyCode: "USD"}
	if diff := cmp.Diff(want, got, protocmp.Transform(), ignoreGenerated); diff != "" {
		t.Errorf("created product (-want +got):\n%s", diff)
	}
	if err := uuid.Validate(got.GetId()); err != nil || !got.GetCreatedAt().IsValid() || !got.GetCreatedAt().AsTime().Equal(got.GetUpdatedAt().AsTime()) {
		t.Errorf("product %v: want a UUID and equal, valid timestamps", got)
	}
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
	if _, err := c.carts.AddItem(as(t, "alice-token"), &cartv1.AddItemRequest{UserId: "me", ProductId: mug.GetId(), Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.carts.AddItem(as(t, "alice-token"), &cartv1.AddItemRequest{UserId: alice.UserID, ProductId: kettle.GetId(), Quantity: 2}); err != nil {
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
			res, err := c.carts.GetCart(as(t, tt.token), &cartv1.GetCartRequest{UserId: tt.userID})
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code %v, want %v (%v)", got, tt.want, err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(want, res.GetCart(), protocmp.Transform()); diff != "" {
				t.Errorf("cart (-want +got):\n%s", diff)
			}
		})
	}
	res, err := c.carts.GetCart(as(t, "bob-token"), &cartv1.GetCartRequest{UserId: "me"})
	if diff := cmp.Diff(&cartv1.Cart{UserId: bob.UserID, TotalPrice: "0.00", CurrencyCode: "USD"}, res.GetCart(), protocmp.Transform()); err != nil || diff != "" {
		t.Errorf("a cart never filled: %v (-want +got):\n%s", err, diff)
	}
}

// TestErrors checks the status code, and the BadRequest fields of INVALID_ARGUMENT, of every
// way a call can fail, whether the rule lives in the proto (protovalidate), in the domain or in
// the store.
func TestErrors(t *testing.T) {
	c := start(t)
	p := createProduct(t, c, "Kettle", "10")
	inCart := createProduct(t, c, "Mug", "1")
	if _, err := c.carts.AddItem(as(t, "alice-token"), &cartv1.AddItemRequest{UserId: "me", ProductId: inCart.GetId(), Quantity: maxQuantity - 1}); err != nil {
		t.Fatal(err)
	}
	str := proto.String
	tests := []struct {
		name       string
		call       func(ctx context.Context) error
		token      string
		want       codes.Code
		wantFields []string
	}{
		{"no token", func(ctx context.Context) error {
			_, err := c.carts.GetCart(ctx, &cartv1.GetCartRequest{UserId: "me"})
			return err
		}, "", codes.Unauthenticated, nil},
		{"unknown token", func(ctx context.Context) error {
			_, err := c.carts.GetCart(ctx, &cartv1.GetCartRequest{UserId: "me"})
			return err
		}, "forged-token", codes.Unauthenticated, nil},
		{"create as non-admin", func(ctx context.Context) error {
			_, err := c.products.CreateProduct(ctx, &cartv1.CreateProductRequest{Name: "X", Price: "1"})
			return err
		}, "alice-token", codes.PermissionDenied, nil},
		{"delete as non-admin", func(ctx context.Context) error {
			_, err := c.products.DeleteProduct(ctx, &cartv1.DeleteProductRequest{ProductId: p.GetId()})
			return err
		}, "alice-token", codes.PermissionDenied, nil},
		{"blank name (domain)", func(ctx context.Context) error {
			_, err := c.products.CreateProduct(ctx, &cartv1.CreateProductRequest{Name: " \t ", Price: "1"})
			return err
		}, "admin-token", codes.InvalidArgument, []string{"name"}},
		{"blank name in a change (domain)", func(ctx context.Context) error {
			_, err := c.products.UpdateProduct(ctx, &cartv1.UpdateProductRequest{ProductId: p.GetId(), Name: str("  ")})
			return err
		}, "admin-token", codes.InvalidArgument, []string{"name"}},
		{"empty name in a change (proto)", func(ctx context.Context) error {
			_, err := c.products.UpdateProduct(ctx, &cartv1.UpdateProductRequest{ProductId: p.GetId(), Name: str("")})
			return err
		}, "admin-token", codes.InvalidArgument, []string{"name"}},
		{"name, description and price at once (proto)", func(ctx context.Context) error {
			_, err := c.products.CreateProduct(ctx, &cartv1.CreateProductRequest{Name: strings.Repeat("n", 201), Description: strings.Repeat("d", 2001), Price: "0.001"})
			return err
		}, "admin-token", codes.InvalidArgument, []string{"name", "description", "price"}},
		{"price zero (proto)", func(ctx context.Context) error {
			_, err := c.products.UpdateProduct(ctx, &cartv1.UpdateProductRequest{ProductId: p.GetId(), Price: str("0.00")})
			return err
		}, "admin-token", codes.InvalidArgument, []string{"price"}},
		{"unknown product", func(ctx context.Context) error {
			_, err := c.products.GetProduct(ctx, &cartv1.GetProductRequest{ProductId: uuid.NewString()})
			return err
		}, "", codes.NotFound, nil},
		{"change an unknown product", func(ctx context.Context) error {
			_, err := c.products.UpdateProduct(ctx, &cartv1.UpdateProductRequest{ProductId: uuid.NewString(), Name: str("X")})
			return err
		}, "admin-token", codes.NotFound, nil},
		{"malformed product ID (proto)", func(ctx context.Context) error {
			_, err := c.products.GetProduct(ctx, &cartv1.GetProductRequest{ProductId: "nope"})
			return err
		}, "", codes.InvalidArgument, []string{"product_id"}},
		{"quantity zero (proto)", func(ctx context.Context) error {
			_, err := c.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: "me", ProductId: p.GetId(), Quantity: 0})
			return err
		}, "alice-token", codes.InvalidArgument, []string{"quantity"}},
		{"quantity over the configured limit (domain)", func(ctx context.Context) error {
			_, err := c.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: "me", ProductId: p.GetId(), Quantity: maxQuantity + 1})
			return err
		}, "alice-token", codes.InvalidArgument, []string{"quantity"}},
		{"merged quantity over the limit (store)", func(ctx context.Context) error {
			_, err := c.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: "me", ProductId: inCart.GetId(), Quantity: 2})
			return err
		}, "alice-token", codes.InvalidArgument, []string{"quantity"}},
		{"set quantity over the limit (domain)", func(ctx context.Context) error {
			_, err := c.carts.UpdateItem(ctx, &cartv1.UpdateItemRequest{UserId: "me", ProductId: inCart.GetId(), Quantity: maxQuantity + 1})
			return err
		}, "alice-token", codes.InvalidArgument, []string{"quantity"}},
		{"negative quantity (proto)", func(ctx context.Context) error {
			_, err := c.carts.UpdateItem(ctx, &cartv1.UpdateItemRequest{UserId: "me", ProductId: inCart.GetId(), Quantity: -1})
			return err
		}, "alice-token", codes.InvalidArgument, []string{"quantity"}},
		{"add an unknown product", func(ctx context.Context) error {
			_, err := c.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: "me", ProductId: uuid.NewString(), Quantity: 1})
			return err
		}, "alice-token", codes.NotFound, nil},
		{"change a product not in the cart", func(ctx context.Context) error {
			_, err := c.carts.UpdateItem(ctx, &cartv1.UpdateItemRequest{UserId: "me", ProductId: p.GetId(), Quantity: 1})
			return err
		}, "alice-token", codes.NotFound, nil},
		{"remove a product not in the cart", func(ctx context.Context) error {
			_, err := c.carts.RemoveItem(ctx, &cartv1.RemoveItemRequest{UserId: "me", ProductId: p.GetId()})
			return err
		}, "alice-token", codes.NotFound, nil},
		{"clear another user's cart", func(ctx context.Context) error {
			_, err := c.carts.ClearCart(ctx, &cartv1.ClearCartRequest{UserId: alice.UserID})
			return err
		}, "bob-token", codes.PermissionDenied, nil},
		{"malformed user ID (proto)", func(ctx context.Context) error {
			_, err := c.carts.GetCart(ctx, &cartv1.GetCartRequest{UserId: "you"})
			return err
		}, "alice-token", codes.InvalidArgument, []string{"user_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(as(t, tt.token))
			if got := status.Code(err); got != tt.want {
				t.Errorf("code %v, want %v (%v)", got, tt.want, err)
			}
			if diff := cmp.Diff(tt.wantFields, badRequestFields(err)); diff != "" {
				t.Errorf("BadRequest fields (-want +got):\n%s", diff)
			}
		})
	}
	res, err := c.carts.GetCart(as(t, "alice-token"), &cartv1.GetCartRequest{UserId: "me"})
	if err != nil || res.GetCart().GetTotalQuantity() != maxQuantity-1 {
		t.Errorf("after the rejected calls: %v, %v; want the cart unchanged", res.GetCart(), err)
	}
}

func TestListProductsPageTokens(t *testing.T) {
	c := start(t)
	var want []string
	for _, name := range []string{"Mug A", "Mug B", "Mug C", "Kettle"} {
		createProduct(t, c, name, "1")
		if strings.HasPrefix(name, "Mug") {
			want = append(want, name)
		}
	}
	var got []string
	req := &cartv1.ListProductsRequest{Search: "mug", PageSize: 2}
	for pages := 1; ; pages++ {
		res, err := c.products.ListProducts(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.GetProducts() {
			got = append(got, p.GetName())
		}
		if res.GetNextPageToken() == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 2", pages)
			}
			break
		}
		if pages > 2 {
			t.Fatal("paging does not end")
		}
		// A token continues only the query it was issued for.
		_, err = c.products.ListProducts(t.Context(), &cartv1.ListProductsRequest{Search: "kettle", PageToken: res.GetNextPageToken()})
		if status.Code(err) != codes.InvalidArgument || !cmp.Equal(badRequestFields(err), []string{"page_token"}) {
			t.Errorf("a token for another search: %v, want INVALID_ARGUMENT on page_token", err)
		}
		req.PageToken = res.GetNextPageToken()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("products of every page (-want +got):\n%s", diff)
	}

	_, err := c.products.ListProducts(t.Context(), &cartv1.ListProductsRequest{PageToken: "Zm9yZ2Vk"})
	if status.Code(err) != codes.InvalidArgument || !cmp.Equal(badRequestFields(err), []string{"page_token"}) {
		t.Errorf("a forged token: %v, want INVALID_ARGUMENT on page_token", err)
	}
}
