package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/grpcserver"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// Login implements customersv1.AuthServiceServer.
func (s *AuthServer) Login(ctx context.Context, req *customersv1.LoginRequest) (*customersv1.LoginResponse, error) {
	res, err := s.svc.Login(ctx, req.GetEmail(), req.GetPassword(), grpcserver.ClientAddr(ctx))
	s.metrics.login(err)
	if err != nil {
		return nil, err
	}
	return &customersv1.LoginResponse{
		AccessToken: res.Token,
		TokenType:   "Bearer",
		ExpiresAt:   timestamppb.New(res.ExpiresAt),
		User:        toProtoUser(res.User),
	}, nil
}

// Logout implements customersv1.AuthServiceServer.
func (s *AuthServer) Logout(ctx context.Context, _ *customersv1.LogoutRequest) (*customersv1.LogoutResponse, error) {
	caller, err := mustCaller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.Logout(ctx, caller); err != nil {
		return nil, err
	}
	return &customersv1.LogoutResponse{}, nil
}

// ValidateToken implements customersv1.AuthServiceServer.
func (s *AuthServer) ValidateToken(ctx context.Context, req *customersv1.ValidateTokenRequest) (*customersv1.ValidateTokenResponse, error) {
	_, u, err := s.svc.Authenticate(ctx, req.GetToken())
	s.metrics.validation(err)
	if err != nil {
		return nil, err
	}
	return &customersv1.ValidateTokenResponse{UserId: u.ID, Email: u.Email, IsAdmin: u.IsAdmin}, nil
}
