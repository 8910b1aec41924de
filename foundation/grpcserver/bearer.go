package grpcserver

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BearerToken reads the token of the request's `authorization: Bearer <token>` metadata (REST
// callers' Authorization header arrives there through the gateway). present is false when
// there is no authorization at all; a malformed one, or more than one, is an UNAUTHENTICATED
// error. The token itself never appears in an error.
func BearerToken(ctx context.Context) (token string, present bool, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, status.Error(codes.Unauthenticated, "more than one authorization header")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", true, status.Error(codes.Unauthenticated, "authorization must be `Bearer <token>`")
	}
	return token, true, nil
}
