package grpcapi

import (
	"context"

	"github.com/acme/shop/foundation/grpcserver"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

// GetCart implements cartv1.CartServiceServer.
func (s *CartServer) GetCart(ctx context.Context, req *cartv1.GetCartRequest) (*cartv1.GetCartResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	got, err := s.svc.Cart(ctx, c, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &cartv1.GetCartResponse{Cart: toProtoCart(got)}, nil
}

// ClearCart implements cartv1.CartServiceServer.
func (s *CartServer) ClearCart(ctx context.Context, req *cartv1.ClearCartRequest) (*cartv1.ClearCartResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	got, err := s.svc.Clear(ctx, c, req.GetUserId(), grpcserver.Precondition(ctx, req.GetEtag()))
	if err != nil {
		return nil, err
	}
	return &cartv1.ClearCartResponse{Cart: toProtoCart(got)}, nil
}

// AddItem implements cartv1.CartServiceServer.
func (s *CartServer) AddItem(ctx context.Context, req *cartv1.AddItemRequest) (*cartv1.AddItemResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	got, err := s.svc.AddItem(ctx, c, req.GetUserId(), req.GetProductId(), req.GetQuantity())
	if err != nil {
		return nil, err
	}
	return &cartv1.AddItemResponse{Cart: toProtoCart(got)}, nil
}

// UpdateItem implements cartv1.CartServiceServer.
func (s *CartServer) UpdateItem(ctx context.Context, req *cartv1.UpdateItemRequest) (*cartv1.UpdateItemResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	got, err := s.svc.UpdateItem(ctx, c, req.GetUserId(), req.GetProductId(), req.GetQuantity(), grpcserver.Precondition(ctx, req.GetEtag()))
	if err != nil {
		return nil, err
	}
	return &cartv1.UpdateItemResponse{Cart: toProtoCart(got)}, nil
}

// RemoveItem implements cartv1.CartServiceServer.
func (s *CartServer) RemoveItem(ctx context.Context, req *cartv1.RemoveItemRequest) (*cartv1.RemoveItemResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	got, err := s.svc.RemoveItem(ctx, c, req.GetUserId(), req.GetProductId(), grpcserver.Precondition(ctx, req.GetEtag()))
	if err != nil {
		return nil, err
	}
	return &cartv1.RemoveItemResponse{Cart: toProtoCart(got)}, nil
}
