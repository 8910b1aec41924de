// Package grpcapi is the cart service's gRPC transport: thin handlers that turn requests into
// domain calls and domain results into responses.
package grpcapi

import (
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

// ProductServer implements cartv1.ProductServiceServer.
type ProductServer struct {
	cartv1.UnimplementedProductServiceServer
}

// CartServer implements cartv1.CartServiceServer.
type CartServer struct {
	cartv1.UnimplementedCartServiceServer
}
