// Package grpcapi is the cart service's gRPC transport: thin handlers that turn requests into
// domain calls and results into responses, and the one map from domain errors to status codes.
// Authentication happens before, in package auth's interceptor.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/grpcserver"
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
	log   *slog.Logger
}

// NewProductServer returns the ProductService handlers. pages signs the list's page tokens.
func NewProductServer(svc *cart.Service, pages *pagetoken.Codec, log *slog.Logger) *ProductServer {
	return &ProductServer{svc: svc, pages: pages, log: log}
}

// CartServer implements cartv1.CartServiceServer.
type CartServer struct {
	cartv1.UnimplementedCartServiceServer
	svc *cart.Service
	log *slog.Logger
}

// NewCartServer returns the CartService handlers.
func NewCartServer(svc *cart.Service, log *slog.Logger) *CartServer {
	return &CartServer{svc: svc, log: log}
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

// toStatus is the one place where domain errors become gRPC status errors. Anything it does
// not know is logged with the method and answered with a generic INTERNAL.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	var verr *cart.ValidationError
	switch {
	case errors.As(err, &verr):
		violations := make([]grpcserver.FieldViolation, len(verr.Fields))
		for i, f := range verr.Fields {
			violations[i] = grpcserver.FieldViolation{Field: f.Field, Description: f.Message}
		}
		return grpcserver.InvalidArgument(verr.Error(), violations...)
	case errors.Is(err, cart.ErrProductNotFound):
		return status.Error(codes.NotFound, "product not found")
	case errors.Is(err, cart.ErrItemNotFound):
		return status.Error(codes.NotFound, "product is not in the cart")
	case errors.Is(err, cart.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "permission denied")
	default:
		return grpcserver.UnexpectedError(ctx, log, err)
	}
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
	}
}
