package grpcapi

import (
	"context"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/grpcserver"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// Login implements customersv1.AuthServiceServer.
func (s *AuthServer) Login(ctx context.Context, req *customersv1.LoginRequest) (*customersv1.LoginResponse, error) {
	res, err := s.svc.Login(ctx, req.GetEmail(), req.GetPassword(), grpcserver.ClientAddr(ctx))
	s.metrics.login(ctx, err)
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
	s.metrics.validation(ctx, err)
	if err != nil {
		return nil, err
	}
	return &customersv1.ValidateTokenResponse{UserId: u.ID, Email: u.Email, IsAdmin: u.IsAdmin}, nil
}

// ValidateTokens implements customersv1.AuthServiceServer with one domain call for all the
// tokens, which looks their sessions up with one query. A token that breaks the rule of
// ValidateTokenRequest's `token` is a result with `valid` false, like any invalid token, and
// goes no further: the call fails as a whole only when the tokens cannot be checked at all.
func (s *AuthServer) ValidateTokens(ctx context.Context, req *customersv1.ValidateTokensRequest) (*customersv1.ValidateTokensResponse, error) {
	tokens := req.GetTokens()
	results := make([]*customersv1.TokenValidation, len(tokens))
	wellFormed, at := make([]string, 0, len(tokens)), make([]int, 0, len(tokens))
	for i, tok := range tokens {
		results[i] = &customersv1.TokenValidation{}
		if protovalidate.Validate(&customersv1.ValidateTokenRequest{Token: tok}) == nil {
			wellFormed, at = append(wellFormed, tok), append(at, i)
		}
	}
	auths, err := s.svc.AuthenticateTokens(ctx, wellFormed)
	if err != nil {
		// Answering the tokens "invalid" would log their users out for a failure of customers.
		for range tokens {
			s.metrics.validation(ctx, err)
		}
		return nil, err
	}
	for range len(tokens) - len(wellFormed) {
		s.metrics.validation(ctx, customer.ErrUnauthenticated)
	}
	for j, a := range auths {
		if !a.Valid {
			s.metrics.validation(ctx, customer.ErrUnauthenticated)
			continue
		}
		s.metrics.validation(ctx, nil)
		results[at[j]] = &customersv1.TokenValidation{Valid: true, UserId: a.User.ID, Email: a.User.Email, IsAdmin: a.User.IsAdmin}
	}
	return &customersv1.ValidateTokensResponse{Results: results}, nil
}
