package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// TestObjectLevelAccess tries every way to reach another user's account: each method, and the
// ID as the victim's UUID in either case, an unknown UUID, and malformed IDs. None gets through,
// and the victim's account is unchanged.
func TestObjectLevelAccess(t *testing.T) {
	h := start(t, "sqlite", nil)
	victimEmail := uniqueEmail()
	victim := h.register(victimEmail, "victimPass1").GetId()
	before := h.do(http.MethodGet, "/api/v1/users/"+victim, h.login(victimEmail, "victimPass1"), nil)
	attackerEmail := uniqueEmail()
	self := h.register(attackerEmail, "attackPass1").GetId()
	tok := h.login(attackerEmail, "attackPass1")

	forms := map[string]int{
		victim:                                 http.StatusForbidden,
		strings.ToUpper(victim):                http.StatusForbidden,
		"00000000-0000-7000-8000-0000000000ff": http.StatusForbidden, // unknown: no hint whether it exists
		"not-a-uuid":                           http.StatusBadRequest,
		victim + "x":                           http.StatusBadRequest,
		"%2e%2e":                               http.StatusBadRequest,
		"ME%20":                                http.StatusBadRequest,
	}
	requests := []struct {
		method, suffix string
		body           any
	}{
		{http.MethodGet, "", nil},
		{http.MethodPatch, "", map[string]any{"first_name": "Pwned"}},
		{http.MethodDelete, "", nil},
		{http.MethodPost, "/password", map[string]any{"current_password": "attackPass1", "new_password": "pwnedPass123"}},
	}
	for id, want := range forms {
		for _, r := range requests {
			path := "/api/v1/users/" + id + r.suffix
			if res := h.do(r.method, path, tok, r.body); res.Code != want {
				t.Errorf("%s %s = %d %s, want %d", r.method, path, res.Code, res.Raw, want)
			}
		}
		_, err := h.users.GetUser(withToken(tok), &customersv1.GetUserRequest{UserId: strings.ReplaceAll(id, "%20", " ")})
		wantCode := codes.PermissionDenied
		if want == http.StatusBadRequest {
			wantCode = codes.InvalidArgument
		}
		if status.Code(err) != wantCode {
			t.Errorf("gRPC GetUser(%q) = %v, want %v", id, err, wantCode)
		}
	}
	// The attacker's own ID, in either case, is the attacker's account.
	for _, id := range []string{self, strings.ToUpper(self), "me"} {
		if res := h.do(http.MethodGet, "/api/v1/users/"+id, tok, nil); res.Code != http.StatusOK || res.JSON["id"] != self {
			t.Errorf("GET own account as %q = %d %s", id, res.Code, res.Raw)
		}
	}
	after := h.do(http.MethodGet, "/api/v1/users/"+victim, h.login(victimEmail, "victimPass1"), nil)
	if diff := cmp.Diff(before.JSON, after.JSON); diff != "" {
		t.Errorf("victim's account changed (-before +after):\n%s", diff)
	}
}
