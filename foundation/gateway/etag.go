package gateway

import (
	"context"
	"net/http"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/etag"
)

// noneMatchKey is the context key of the If-None-Match header of a GET request.
type noneMatchKey struct{}

// conditionalGET remembers the If-None-Match header of GET requests (HEAD arrives as GET,
// headAsGET) for forwardETag, which sees the request's context but not the request.
func conditionalGET(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if h := r.Header.Values("If-None-Match"); len(h) > 0 {
				v := h[0]
				for _, more := range h[1:] {
					v += "," + more
				}
				r = r.WithContext(context.WithValue(r.Context(), noneMatchKey{}, v))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// forwardETag sets the ETag header of a response that is one resource: the quoted `etag`
// field of the response message, or of its one top-level message field that has one
// (GetUserResponse.user). A GET whose If-None-Match names that tag is answered 304 with no
// body: net/http refuses the gateway's write of the body after it.
func forwardETag(ctx context.Context, w http.ResponseWriter, resp proto.Message) error {
	tag := messageETag(resp.ProtoReflect())
	if tag == "" {
		return nil
	}
	w.Header().Set("ETag", etag.Quote(tag))
	if h, ok := ctx.Value(noneMatchKey{}).(string); ok && etag.NoneMatch(h, tag) {
		w.Header().Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
	}
	return nil
}

// messageETag returns the `etag` string field of m, or else of the single message field of m
// that is set and has one, or "".
func messageETag(m protoreflect.Message) string {
	if t := ownETag(m); t != "" {
		return t
	}
	found := ""
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.MessageKind || fd.Cardinality() == protoreflect.Repeated || fd.IsMap() || !m.Has(fd) {
			continue
		}
		if t := ownETag(m.Get(fd).Message()); t != "" {
			if found != "" {
				return ""
			}
			found = t
		}
	}
	return found
}

func ownETag(m protoreflect.Message) string {
	fd := m.Descriptor().Fields().ByName("etag")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return ""
	}
	return m.Get(fd).String()
}
