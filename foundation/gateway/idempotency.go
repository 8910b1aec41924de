package gateway

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// checkIdempotencyKey refuses, with 400 and a google.rpc.BadRequest naming the header, a
// request whose Idempotency-Key holds a byte that gRPC metadata cannot carry (outside 0x20 to
// 0x7E). grpc-gateway would drop such a value silently, and the request would run as if it had
// no key: a client that means to retry safely must learn that its key is unusable. The other
// malformed keys (a space, too long, empty) reach the service, whose interceptor refuses them
// alike (package idempotency).
func checkIdempotencyKey(gw *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, v := range r.Header.Values("Idempotency-Key") {
			if !metadataText(v) {
				st := status.New(codes.InvalidArgument, "invalid Idempotency-Key: must be visible ASCII characters (no spaces)")
				if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
					{Field: "Idempotency-Key", Description: "must be visible ASCII characters (no spaces)"},
				}}); err == nil {
					st = d
				}
				_, out := runtime.MarshalerForRequest(gw, r)
				runtime.HTTPError(r.Context(), gw, out, w, r, st.Err())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// metadataText reports whether v can travel as a gRPC metadata text value.
func metadataText(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
