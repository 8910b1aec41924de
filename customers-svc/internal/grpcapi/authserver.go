package grpcapi

import (
	"context"
	"errors"
	"sync"

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

// ValidateTokens implements customersv1.AuthServiceServer. The tokens are checked
// concurrently: each Authenticate waits for its session lookup, and the lookups of the whole
// call (and of the calls running beside it) go to the database together, as one batched
// query (customerdb's session loader), instead of one after the other.
func (s *AuthServer) ValidateTokens(ctx context.Context, req *customersv1.ValidateTokensRequest) (*customersv1.ValidateTokensResponse, error) {
	tokens := req.GetTokens()
	results := make([]*customersv1.TokenValidation, len(tokens))
	errs := make([]error, len(tokens))
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			_, u, err := s.svc.Authenticate(ctx, tok)
			s.metrics.validation(ctx, err)
			switch {
			case err == nil:
				results[i] = &customersv1.TokenValidation{Valid: true, UserId: u.ID, Email: u.Email, IsAdmin: u.IsAdmin}
			case errors.Is(err, customer.ErrUnauthenticated):
				results[i] = &customersv1.TokenValidation{}
			default:
				errs[i] = err
			}
		})
	}
	wg.Wait()
	// A token that could not be checked fails the call: answering it "invalid" would log its
	// user out for a failure of customers.
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return &customersv1.ValidateTokensResponse{Results: results}, nil
}
