package grpcserver

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/acme/shop/foundation/etag"
)

// Precondition returns the precondition of a conditional write (AIP-154): the request's `etag`
// field when it is set, else the call's if-match metadata, which is where the gateway puts a
// REST caller's If-Match header. Several if-match values are one list.
func Precondition(ctx context.Context, field string) etag.Condition {
	if field != "" {
		return etag.Field(field)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return etag.IfMatch(strings.Join(md.Get("if-match"), ","))
}
