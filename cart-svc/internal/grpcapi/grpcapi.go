// Package grpcapi is the cart service's gRPC transport: thin handlers that turn requests into
// domain calls and results into responses, and the map from the cart domain's own errors to
// status codes (Errors), which the server applies to whatever a handler returns.
// Authentication happens before, in package auth's interceptor.
package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/pagetoken"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
)

// ProductServer implements cartv1.ProductServiceServer.
type ProductServer struct {
	cartv1.UnimplementedProductServiceServer
	svc   *cart.Service
	pages *pagetoken.Codec
}

// NewProductServer returns the ProductService handlers. pages signs the list's page tokens.
func NewProductServer(svc *cart.Service, pages *pagetoken.Codec) *ProductServer {
	return &ProductServer{svc: svc, pages: pages}
}

// CartServer implements cartv1.CartServiceServer.
type CartServer struct {
	cartv1.UnimplementedCartServiceServer
	svc *cart.Service
}

// NewCartServer returns the CartService handlers.
func NewCartServer(svc *cart.Service) *CartServer {
	return &CartServer{svc: svc}
}

// caller returns the caller the auth interceptor authenticated. Its absence on an RPC that
// requires a token is a wiring bug, so it fails closed.
func caller(ctx context.Context) (cart.Caller, error) {
	c, ok := auth.CallerFrom(ctx)
	if !ok {
		return cart.Caller{}, status.Error(codes.Unauthenticated, "missing bearer token")
	}
	return c, nil
}

// errNoRule refuses a request that Authorize has no rule for.
var errNoRule = errors.New("grpcapi: no authorization rule for this request")

// Authorize returns nil when the caller of ctx may make req now, and else the error its handler
// would return, without making it: the domain's own rule of who may do what
// (idempotency.Options.Authorize, asked before an answer is replayed). It knows the requests
// of the RPCs that take an Idempotency-Key, and refuses any other (INTERNAL), so that an RPC
// declared idempotent without a rule here is never replayed unchecked; a test holds the two
// together.
func Authorize(ctx context.Context, req any) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	switch r := req.(type) {
	case *cartv1.AddItemRequest:
		_, err := c.CartOf(r.GetUserId())
		return err
	case *cartv1.CreateProductRequest:
		return c.MayEditCatalog()
	}
	return errNoRule
}

// Errors is the cart service's part of the map from errors to status codes
// (grpcserver.Options.Errors): the cart domain's own errors. Invalid input, permission denied
// and anything unexpected are the server's, the same in every service; it returns nil for those.
func Errors(_ context.Context, err error) *status.Status {
	switch {
	case errors.Is(err, cart.ErrProductNotFound):
		return status.New(codes.NotFound, "product not found")
	case errors.Is(err, cart.ErrItemNotFound):
		return status.New(codes.NotFound, "product is not in the cart")
	case errors.Is(err, cart.ErrUserErased):
		return status.New(codes.NotFound, "user not found")
	}
	return nil
}

func toProtoProduct(p cart.Product) *cartv1.Product {
	return &cartv1.Product{
		Id:           p.ID,
		Name:         p.Name,
		Description:  p.Description,
		Price:        p.Price.String(),
		CurrencyCode: cart.Currency,
		CreatedAt:    timestamppb.New(p.CreatedAt),
		UpdatedAt:    timestamppb.New(p.UpdatedAt),
		Etag:         p.ETag(),
	}
}

func toProtoCart(c cart.Cart) *cartv1.Cart {
	items := make([]*cartv1.CartItem, len(c.Lines))
	for i, l := range c.Lines {
		items[i] = &cartv1.CartItem{
			ProductId: l.ProductID,
			Name:      l.Name,
			UnitPrice: l.UnitPrice.String(),
			Quantity:  l.Quantity,
			LineTotal: l.Total().String(),
		}
	}
	return &cartv1.Cart{
		UserId:        c.UserID,
		Items:         items,
		TotalQuantity: c.TotalQuantity(),
		TotalPrice:    c.TotalPrice().String(),
		CurrencyCode:  cart.Currency,
		Etag:          c.ETag(),
	}
}
