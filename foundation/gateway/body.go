package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
)

// limitBody rejects request bodies larger than MaxBodyBytes with 413 before any of it is
// decoded, and a body that cannot be read with 400. Reading the whole (bounded) body up front
// keeps the gateway's JSON decoder from seeing a truncated document.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, int(codes.InvalidArgument), errTooLarge.Error())
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, http.StatusRequestEntityTooLarge, int(codes.InvalidArgument), errTooLarge.Error())
				return
			}
			writeError(w, http.StatusBadRequest, int(codes.InvalidArgument), "cannot read request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
