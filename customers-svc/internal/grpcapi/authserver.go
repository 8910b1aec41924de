package grpcapi

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/grpcserver"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// Login implements customersv1.AuthServiceServer.
func (s *AuthServer) Login(ctx context.Context, req *customersv1.LoginRequest) (*customersv1.LoginResponse, error) {
	res, err := s.svc.Login(ctx, req.GetEmail(), req.GetPassword(), clientAddr(ctx))
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
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
		return nil, toStatus(ctx, s.log, err)
	}
	return &customersv1.LogoutResponse{}, nil
}

// ValidateToken implements customersv1.AuthServiceServer.
func (s *AuthServer) ValidateToken(ctx context.Context, req *customersv1.ValidateTokenRequest) (*customersv1.ValidateTokenResponse, error) {
	_, u, err := s.svc.Authenticate(ctx, req.GetToken())
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &customersv1.ValidateTokenResponse{UserId: u.ID, Email: u.Email, IsAdmin: u.IsAdmin}, nil
}

// clientAddr is the address login failures are counted against. A call from the service's own
// REST gateway comes in-process: for it, the last X-Forwarded-For entry, which the gateway
// appends from the HTTP connection, names the real client. Entries before it are whatever the
// client claimed and are ignored. A gRPC call is counted against its peer address, whatever
// metadata it sends. Behind a reverse proxy, count on the proxy's address or put the throttle
// in the proxy.
func clientAddr(ctx context.Context) string {
	if grpcserver.InProcess(ctx) {
		md, _ := metadata.FromIncomingContext(ctx)
		if xff := md.Get("x-forwarded-for"); len(xff) > 0 {
			entries := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(entries[len(entries)-1]); net.ParseIP(last) != nil {
				return last
			}
		}
		return "unknown"
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		host = p.Addr.String()
	}
	return host
}
