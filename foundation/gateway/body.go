package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
)

// limitBody rejects request bodies larger than MaxBodyBytes with 413 before any of it is
// decoded, and a body that cannot be read with 400. Reading the whole (bounded) body up front
// keeps the gateway's JSON decoder from seeing a truncated document. It also rejects a path or
// query that is not valid UTF-8 with 400: proto strings must be UTF-8, and the gateway would
// otherwise fail to marshal the request and answer 500.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !validURL(r) {
			writeError(w, http.StatusBadRequest, int(codes.InvalidArgument), "request path and query must be valid UTF-8")
			return
		}
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

func validURL(r *http.Request) bool {
	if !utf8.ValidString(r.URL.Path) {
		return false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return true // the gateway answers malformed queries with 400 itself
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}
