package main

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/service/servicetest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// TestConditionalUsers checks ETag, If-Match and If-None-Match on a user over REST and the
// etag field and if-match metadata over gRPC, as a client with a stale copy, a client with a
// forged tag, and another user would use them.
func TestConditionalUsers(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, nil)
		adaEmail, bobEmail := uniqueEmail(), uniqueEmail()
		ada := h.register(adaEmail, "adaPass1234")
		h.register(bobEmail, "bobPass1234")
		adaTok, bobTok := h.login(adaEmail, "adaPass1234"), h.login(bobEmail, "bobPass1234")
		path := "/api/v1/users/" + ada.GetId()
		do := func(method, token string, header http.Header, body any) servicetest.Response {
			t.Helper()
			return servicetest.DoHeader(t, method, h.rest+path, servicetest.Bearer(token), header, body)
		}
		ifMatch := func(v string) http.Header { return http.Header{"If-Match": {v}} }
		current := func() (string, servicetest.Response) {
			t.Helper()
			got := do(http.MethodGet, adaTok, nil, nil)
			tag, _ := got.JSON["etag"].(string)
			if got.Code != http.StatusOK || tag == "" || got.Header.Get("ETag") != `"`+tag+`"` {
				t.Fatalf("GET = %d, ETag %q, body %s: want 200 and the body's etag quoted", got.Code, got.Header.Get("ETag"), got.Raw)
			}
			return got.Header.Get("ETag"), got
		}

		first, _ := current()
		if ada.GetEtag() == "" || `"`+ada.GetEtag()+`"` != first {
			t.Errorf("created user's etag %q, GET's ETag %s: want the same", ada.GetEtag(), first)
		}
		if got := do(http.MethodGet, adaTok, http.Header{"If-None-Match": {first}}, nil); got.Code != http.StatusNotModified || len(got.Raw) != 0 || got.Header.Get("ETag") != first {
			t.Errorf("GET If-None-Match current = %d %q ETag %q, want 304, no body, the ETag", got.Code, got.Raw, got.Header.Get("ETag"))
		}
		if got := do(http.MethodGet, adaTok, http.Header{"If-None-Match": {`"other", W/` + first}}, nil); got.Code != http.StatusNotModified {
			t.Errorf("GET If-None-Match list with weak current = %d, want 304", got.Code)
		}
		if got := do(http.MethodGet, adaTok, http.Header{"If-None-Match": {`"other"`}}, nil); got.Code != http.StatusOK || got.JSON["email"] != adaEmail {
			t.Errorf("GET If-None-Match other = %d %s, want 200 with the user", got.Code, got.Raw)
		}

		changed := do(http.MethodPatch, adaTok, ifMatch(first), map[string]any{"first_name": "Ada"})
		second := changed.Header.Get("ETag")
		if changed.Code != http.StatusOK || second == "" || second == first || second != `"`+changed.JSON["etag"].(string)+`"` {
			t.Fatalf("PATCH If-Match current = %d ETag %q %s, want 200 and a new ETag equal to the body's", changed.Code, second, changed.Raw)
		}

		for name, header := range map[string]string{
			"stale":        first,
			"weak current": "W/" + second,
			"unquoted":     changed.JSON["etag"].(string),
			"garbage":      "garbage",
			"empty quotes": `""`,
		} {
			t.Run("PATCH If-Match "+name, func(t *testing.T) {
				got := do(http.MethodPatch, adaTok, ifMatch(header), map[string]any{"first_name": "Mallory"})
				if got.Code != http.StatusPreconditionFailed || got.Reason() != grpcserver.ReasonETagMismatch {
					t.Errorf("= %d %s, want 412 with reason %s", got.Code, got.Raw, grpcserver.ReasonETagMismatch)
				}
				if tag, now := current(); tag != second || now.JSON["first_name"] != "Ada" {
					t.Errorf("after a failed PATCH: ETag %s, first_name %v; want unchanged %s, Ada", tag, now.JSON["first_name"], second)
				}
			})
		}
		if got := do(http.MethodDelete, adaTok, ifMatch(first), map[string]any{"current_password": "adaPass1234"}); got.Code != http.StatusPreconditionFailed || got.Reason() != grpcserver.ReasonETagMismatch {
			t.Errorf("DELETE If-Match stale = %d %s, want 412", got.Code, got.Raw)
		}
		current() // still there

		t.Run("another user", func(t *testing.T) {
			// Authorization comes first: bob learns nothing, with or without the right tag.
			for _, header := range []http.Header{ifMatch(second), ifMatch("*"), ifMatch(first)} {
				if got := do(http.MethodPatch, bobTok, header, map[string]any{"first_name": "Bob"}); got.Code != http.StatusForbidden {
					t.Errorf("bob's PATCH %v = %d %s, want 403", header, got.Code, got.Raw)
				}
				if got := do(http.MethodDelete, bobTok, header, nil); got.Code != http.StatusForbidden {
					t.Errorf("bob's DELETE %v = %d %s, want 403", header, got.Code, got.Raw)
				}
			}
			if got := do(http.MethodGet, bobTok, http.Header{"If-None-Match": {second}}, nil); got.Code != http.StatusForbidden {
				t.Errorf("bob's GET If-None-Match = %d, want 403", got.Code)
			}
		})

		t.Run("gRPC", func(t *testing.T) {
			ctx := withToken(adaTok)
			_, err := h.users.UpdateUser(ctx, &customersv1.UpdateUserRequest{UserId: "me", LastName: proto.String("X"), Etag: ada.GetEtag()})
			if status.Code(err) != codes.Aborted || grpctest.Reason(err) != grpcserver.ReasonETagMismatch {
				t.Errorf("UpdateUser with a stale etag: %v, want ABORTED with reason %s", err, grpcserver.ReasonETagMismatch)
			}
			mdCtx := metadata.AppendToOutgoingContext(ctx, "if-match", first)
			if _, err := h.users.DeleteUser(mdCtx, &customersv1.DeleteUserRequest{UserId: "me", CurrentPassword: "adaPass1234"}); status.Code(err) != codes.Aborted {
				t.Errorf("DeleteUser with a stale if-match: %v, want ABORTED", err)
			}
			got, err := h.users.GetUser(ctx, &customersv1.GetUserRequest{UserId: "me"})
			if err != nil || `"`+got.GetUser().GetEtag()+`"` != second || got.GetUser().GetLastName() != "" {
				t.Fatalf("GetUser after failed writes = %v, %v; want the user unchanged", got, err)
			}
			// The field wins over the metadata.
			res, err := h.users.UpdateUser(mdCtx, &customersv1.UpdateUserRequest{UserId: "me", LastName: proto.String("Lovelace"), Etag: got.GetUser().GetEtag()})
			if err != nil || res.GetUser().GetEtag() == got.GetUser().GetEtag() {
				t.Fatalf("UpdateUser with the current etag = %v, %v; want OK and a new etag", res, err)
			}
			if _, err := h.users.DeleteUser(ctx, &customersv1.DeleteUserRequest{UserId: "me", Etag: res.GetUser().GetEtag(), CurrentPassword: "adaPass1234"}); err != nil {
				t.Errorf("DeleteUser with the current etag: %v", err)
			}
		})
	})
}
