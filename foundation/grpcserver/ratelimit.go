package grpcserver

import (
	"context"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/shop/foundation/rpcs"
)

// LimitWrites returns the interceptor (Options.RateLimit) that limits each caller's calls of the
// RPCs that write (Writes): take counts one call under the key "writes:" and the caller's id
// (caller), and returns how long the caller must wait when it is over its limit, which is then
// RESOURCE_EXHAUSTED (HTTP 429) with a retry-after header (RetryAfter), and runs nothing.
// ratelimit.Limiter.Take counts in the service's database, so that the limit holds across
// replicas. Calls without a caller are not counted: no RPC that writes is public. The RPCs are
// read from protoregistry.GlobalFiles now, so the services' generated packages must be linked
// in.
func LimitWrites(take func(ctx context.Context, key string) (time.Duration, error), caller func(ctx context.Context) (string, bool)) grpc.UnaryServerInterceptor {
	writes := Writes(protoregistry.GlobalFiles)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !writes[info.FullMethod] {
			return handler(ctx, req)
		}
		id, ok := caller(ctx)
		if !ok || id == "" {
			return handler(ctx, req)
		}
		wait, err := take(ctx, "writes:"+id)
		if err != nil {
			return nil, err
		}
		if wait > 0 {
			return nil, RetryAfter(ctx, wait, "too many changes")
		}
		return handler(ctx, req)
	}
}

// Writes returns the full method names of the RPCs of files that write: those whose REST
// mapping (google.api.http) is not a GET.
func Writes(files *protoregistry.Files) map[string]bool {
	out := map[string]bool{}
	for md := range rpcs.All(files) {
		rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule != nil && rule.GetPattern() != nil && rule.GetGet() == "" {
			out[rpcs.FullName(md)] = true
		}
	}
	return out
}
