package grpcapi

import (
	"context"

	"github.com/acme/shop/foundation/grpcserver"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/cart"
)

// ListProducts implements cartv1.ProductServiceServer.
func (s *ProductServer) ListProducts(ctx context.Context, req *cartv1.ListProductsRequest) (*cartv1.ListProductsResponse, error) {
	q := cart.ListQuery{Search: req.GetSearch(), Limit: int(req.GetPageSize())}
	if req.GetPageToken() != "" {
		after, err := s.pages.Decode(req.GetPageToken(), req.GetSearch())
		if err != nil {
			return nil, err
		}
		q.After = after
	}
	ps, next, err := s.svc.ListProducts(ctx, q)
	if err != nil {
		return nil, err
	}
	res := &cartv1.ListProductsResponse{Products: make([]*cartv1.Product, len(ps))}
	for i, p := range ps {
		res.Products[i] = toProtoProduct(p)
	}
	if next != "" {
		res.NextPageToken = s.pages.Encode(next, req.GetSearch())
	}
	return res, nil
}

// GetProduct implements cartv1.ProductServiceServer.
func (s *ProductServer) GetProduct(ctx context.Context, req *cartv1.GetProductRequest) (*cartv1.GetProductResponse, error) {
	p, err := s.svc.Product(ctx, req.GetProductId())
	if err != nil {
		return nil, err
	}
	return &cartv1.GetProductResponse{Product: toProtoProduct(p)}, nil
}

// CreateProduct implements cartv1.ProductServiceServer.
func (s *ProductServer) CreateProduct(ctx context.Context, req *cartv1.CreateProductRequest) (*cartv1.CreateProductResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.svc.CreateProduct(ctx, c, cart.NewProduct{Name: req.GetName(), Description: req.GetDescription(), Price: req.GetPrice()})
	if err != nil {
		return nil, err
	}
	return &cartv1.CreateProductResponse{Product: toProtoProduct(p)}, nil
}

// UpdateProduct implements cartv1.ProductServiceServer.
func (s *ProductServer) UpdateProduct(ctx context.Context, req *cartv1.UpdateProductRequest) (*cartv1.UpdateProductResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.svc.UpdateProduct(ctx, c, req.GetProductId(), cart.ProductChanges{Name: req.Name, Description: req.Description, Price: req.Price}, grpcserver.Precondition(ctx, req.GetEtag()))
	if err != nil {
		return nil, err
	}
	return &cartv1.UpdateProductResponse{Product: toProtoProduct(p)}, nil
}

// DeleteProduct implements cartv1.ProductServiceServer.
func (s *ProductServer) DeleteProduct(ctx context.Context, req *cartv1.DeleteProductRequest) (*cartv1.DeleteProductResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.DeleteProduct(ctx, c, req.GetProductId(), grpcserver.Precondition(ctx, req.GetEtag())); err != nil {
		return nil, err
	}
	return &cartv1.DeleteProductResponse{}, nil
}
