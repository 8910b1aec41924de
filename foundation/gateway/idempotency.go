package gateway

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/acme/shop/foundation/idempotency"
)

// checkIdempotencyKey refuses a request whose Idempotency-Key holds a byte that gRPC metadata
// cannot carry (outside 0x20 to 0x7E), with the 400 the service gives any malformed key
// (idempotency.CheckKey). grpc-gateway would drop such a value silently, and the request would
// run as if it had no key: a client that means to retry safely must learn that its key is
// unusable. The other malformed keys (a space, too long, empty) reach the service, whose
// interceptor refuses them alike.
func checkIdempotencyKey(gw *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, v := range r.Header.Values("Idempotency-Key") {
			if !metadataText(v) {
				_, out := runtime.MarshalerForRequest(gw, r)
				runtime.HTTPError(r.Context(), gw, out, w, r, idempotency.CheckKey(v))
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
