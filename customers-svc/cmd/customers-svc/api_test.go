package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/database/dbtest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// TestRevocation checks that logout, a password change and deletion make an existing token
// fail ValidateToken and ValidateTokens at once, and that a demotion takes effect on the next
// call.
func TestRevocation(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, nil)
		ctx := context.Background()
		valid := func(tok string) (*customersv1.ValidateTokenResponse, codes.Code) {
			t.Helper()
			res, err := h.auth.ValidateToken(ctx, &customersv1.ValidateTokenRequest{Token: tok})
			// The batch RPC answers the same, a token beside it in the call changing nothing.
			batch, batchErr := h.auth.ValidateTokens(ctx, &customersv1.ValidateTokensRequest{Tokens: []string{"forged-token", tok}})
			if batchErr != nil {
				t.Fatalf("ValidateTokens: %v", batchErr)
			}
			got := batch.GetResults()[1]
			wantValid := status.Code(err) == codes.OK
			if got.GetValid() != wantValid || got.GetUserId() != res.GetUserId() || got.GetIsAdmin() != res.GetIsAdmin() || batch.GetResults()[0].GetValid() {
				t.Errorf("ValidateTokens = %v, ValidateToken = %v, %v; want the same answer", batch.GetResults(), res, err)
			}
			return res, status.Code(err)
		}
		newUser := func() (string, string) {
			email := uniqueEmail()
			u := h.register(email, "ownerPass123")
			return u.GetId(), h.login(email, "ownerPass123")
		}

		t.Run("logout", func(t *testing.T) {
			_, tok := newUser()
			if _, code := valid(tok); code != codes.OK {
				t.Fatalf("fresh token: %v", code)
			}
			if res := h.do(http.MethodPost, "/api/v1/auth/logout", tok, "{}"); res.Code != http.StatusNoContent {
				t.Fatalf("logout = %d %s", res.Code, res.Raw)
			}
			if _, code := valid(tok); code != codes.Unauthenticated {
				t.Errorf("after logout: %v, want Unauthenticated", code)
			}
		})
		t.Run("password change revokes every token", func(t *testing.T) {
			_, tok := newUser()
			res, err := h.users.GetUser(withToken(tok), &customersv1.GetUserRequest{UserId: "me"})
			if err != nil {
				t.Fatal(err)
			}
			email := res.GetUser().GetEmail()
			second := h.login(email, "ownerPass123")
			if _, err := h.users.ChangePassword(withToken(tok), &customersv1.ChangePasswordRequest{UserId: "me", CurrentPassword: "ownerPass123", NewPassword: "brandNewPass1"}); err != nil {
				t.Fatal(err)
			}
			for _, tk := range []string{tok, second} {
				if _, code := valid(tk); code != codes.Unauthenticated {
					t.Errorf("token issued before the change: %v, want Unauthenticated", code)
				}
			}
			if _, err := h.auth.Login(ctx, &customersv1.LoginRequest{Email: email, Password: "ownerPass123"}); status.Code(err) != codes.Unauthenticated {
				t.Errorf("old password still logs in: %v", err)
			}
			h.login(email, "brandNewPass1")
		})
		t.Run("deletion", func(t *testing.T) {
			_, tok := newUser()
			if res := h.do(http.MethodDelete, "/api/v1/users/me", tok, map[string]any{"current_password": "ownerPass123"}); res.Code != http.StatusNoContent || len(res.Raw) != 0 {
				t.Fatalf("delete = %d %q", res.Code, res.Raw)
			}
			if _, code := valid(tok); code != codes.Unauthenticated {
				t.Errorf("after deletion: %v, want Unauthenticated", code)
			}
		})
		t.Run("demotion on the next call", func(t *testing.T) {
			admin := h.login("admin1@email.com", demoPassword)
			id, _ := newUser()
			yes, no := true, false
			if _, err := h.users.UpdateUser(withToken(admin), &customersv1.UpdateUserRequest{UserId: id, IsAdmin: &yes}); err != nil {
				t.Fatal(err)
			}
			res, _ := h.users.GetUser(withToken(admin), &customersv1.GetUserRequest{UserId: id})
			promoted := h.login(res.GetUser().GetEmail(), "ownerPass123")
			if r, _ := valid(promoted); !r.GetIsAdmin() {
				t.Fatal("promoted user is not admin")
			}
			if _, err := h.users.ListUsers(withToken(promoted), &customersv1.ListUsersRequest{}); err != nil {
				t.Fatalf("promoted user cannot list: %v", err)
			}
			if _, err := h.users.UpdateUser(withToken(admin), &customersv1.UpdateUserRequest{UserId: id, IsAdmin: &no}); err != nil {
				t.Fatal(err)
			}
			if r, code := valid(promoted); code != codes.OK || r.GetIsAdmin() {
				t.Errorf("after demotion ValidateToken = %v, admin %v; want OK, not admin", code, r.GetIsAdmin())
			}
			if _, err := h.users.ListUsers(withToken(promoted), &customersv1.ListUsersRequest{}); status.Code(err) != codes.PermissionDenied {
				t.Errorf("demoted user lists users: %v, want PermissionDenied", err)
			}
		})
	})
}

// TestValidation sends each field rule of the contract a value that breaks it, over REST, and
// checks for a 400 with a field violation naming exactly that field.
func TestValidation(t *testing.T) {
	h := start(t, "sqlite", nil)
	admin := h.login("admin1@email.com", demoPassword)
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"email format", "POST", "/api/v1/users", map[string]any{"email": "not-an-email", "password": "password1"}, "email"},
		{"email too long", "POST", "/api/v1/users", map[string]any{"email": long(250) + "@b.co", "password": "password1"}, "email"},
		{"email missing", "POST", "/api/v1/users", map[string]any{"password": "password1"}, "email"},
		{"password short", "POST", "/api/v1/users", map[string]any{"email": "a@b.co", "password": "1234567"}, "password"},
		{"password long", "POST", "/api/v1/users", map[string]any{"email": "a@b.co", "password": long(129)}, "password"},
		{"first name long", "POST", "/api/v1/users", map[string]any{"email": "a@b.co", "password": "password1", "first_name": long(101)}, "first_name"},
		{"last name long", "POST", "/api/v1/users", map[string]any{"email": "a@b.co", "password": "password1", "last_name": long(101)}, "last_name"},
		{"patch email", "PATCH", "/api/v1/users/me", map[string]any{"email": "nope"}, "email"},
		{"patch first name", "PATCH", "/api/v1/users/me", map[string]any{"first_name": long(101)}, "first_name"},
		{"user id", "GET", "/api/v1/users/not-a-uuid", nil, "user_id"},
		{"new password short", "POST", "/api/v1/users/me/password", map[string]any{"current_password": demoPassword, "new_password": "short"}, "new_password"},
		{"current password wrong", "POST", "/api/v1/users/me/password", map[string]any{"current_password": "wrongPassword", "new_password": "password123"}, "current_password"},
		{"current password missing", "POST", "/api/v1/users/me/password", map[string]any{"new_password": "password123"}, "current_password"},
		{"page size negative", "GET", "/api/v1/users?page_size=-1", nil, "page_size"},
		{"page token forged", "GET", "/api/v1/users?page_token=Zm9yZ2VkLXRva2VuLXdpdGgtbm8tc2lnbmF0dXJl", nil, "page_token"},
		{"search too long", "GET", "/api/v1/users?search=" + long(255), nil, "search"},
		{"login email missing", "POST", "/api/v1/auth/login", map[string]any{"password": "x"}, "email"},
		{"login password missing", "POST", "/api/v1/auth/login", map[string]any{"email": "a@b.co"}, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(tt.method, tt.path, admin, tt.body)
			if res.Code != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", res.Code, res.Raw)
			}
			if diff := cmp.Diff([]string{tt.field}, res.FieldViolations()); diff != "" {
				t.Errorf("field violations (-want +got):\n%s\nbody: %s", diff, res.Raw)
			}
		})
	}

	// Over gRPC, the same rule yields the same detail.
	_, err := h.users.CreateUser(context.Background(), &customersv1.CreateUserRequest{Email: "x", Password: "password1"})
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if status.Code(err) != codes.InvalidArgument || !cmp.Equal(fields, []string{"email"}) {
		t.Errorf("gRPC: %v with fields %v, want InvalidArgument on email", err, fields)
	}
}

// TestMassAssignment checks that fields a caller may not set are rejected, never applied.
func TestMassAssignment(t *testing.T) {
	h := start(t, "sqlite", nil)
	email := uniqueEmail()
	for name, body := range map[string]string{
		"id":            `{"email":"` + email + `","password":"password1","id":"00000000-0000-7000-8000-000000000001"}`,
		"created_at":    `{"email":"` + email + `","password":"password1","created_at":"2000-01-01T00:00:00Z"}`,
		"password_hash": `{"email":"` + email + `","password":"password1","password_hash":"$argon2id$..."}`,
		"is_admin":      `{"email":"` + email + `","password":"password1","is_admin":true}`,
	} {
		t.Run("register with "+name, func(t *testing.T) {
			res := h.do(http.MethodPost, "/api/v1/users", "", body)
			if res.Code != http.StatusBadRequest && res.Code != http.StatusForbidden {
				t.Errorf("got %d %s, want 400 or 403", res.Code, res.Raw)
			}
		})
	}
	tok := h.login("nonadmin3@email.com", demoPassword)
	for name, body := range map[string]string{
		"is_admin":       `{"is_admin":true}`,
		"is_admin false": `{"is_admin":false}`,
		"id":             `{"id":"00000000-0000-7000-8000-000000000001"}`,
		"updated_at":     `{"updated_at":"2000-01-01T00:00:00Z"}`,
	} {
		t.Run("patch "+name, func(t *testing.T) {
			res := h.do(http.MethodPatch, "/api/v1/users/me", tok, body)
			if res.Code != http.StatusBadRequest && res.Code != http.StatusForbidden {
				t.Errorf("got %d %s, want 400 or 403", res.Code, res.Raw)
			}
		})
	}
	me := h.do(http.MethodGet, "/api/v1/users/me", tok, nil)
	if me.JSON["is_admin"] != false || me.JSON["id"] != "00000000-0000-7000-8000-000000000003" {
		t.Errorf("account changed by a rejected request: %s", me.Raw)
	}
}

// TestLoginThrottleOverREST checks the 429 with Retry-After, and that the right password does
// not get through while throttled.
func TestLoginThrottleOverREST(t *testing.T) {
	h := start(t, "sqlite", map[string]string{"CUSTOMERS_LOGIN_MAX_FAILURES_PER_EMAIL_ADDR": "3"})
	email := uniqueEmail()
	h.register(email, "rightPass123")
	for i := range 3 {
		res := h.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": email, "password": "wrongPass123"})
		if res.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d, want 401", i, res.Code)
		}
	}
	res := h.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": email, "password": "rightPass123"})
	if res.Code != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("after the limit: %d with Retry-After %q, want 429 with a Retry-After", res.Code, res.Header.Get("Retry-After"))
	}
	unknown := h.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": uniqueEmail(), "password": "wrongPass123"})
	wrong := h.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "nonadmin4@email.com", "password": "wrongPass123"})
	if unknown.Code != http.StatusUnauthorized || string(unknown.Raw) != string(wrong.Raw) {
		t.Errorf("unknown email %d %s vs wrong password %d %s: want identical 401s", unknown.Code, unknown.Raw, wrong.Code, wrong.Raw)
	}
}

// TestLoginThrottlePerAddressIgnoresForgedForwarding checks that a client cannot leave its
// per-address bucket by claiming another address: REST failures with forged X-Forwarded-For
// headers and gRPC failures with forged x-forwarded-for metadata all count against the one
// loopback address they come from, so the fourth attempt is refused whatever it claims.
func TestLoginThrottlePerAddressIgnoresForgedForwarding(t *testing.T) {
	h := start(t, "sqlite", map[string]string{"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR": "3"})
	email := uniqueEmail()
	h.register(email, "rightPass123")
	restLogin := func(forged string) int {
		body := strings.NewReader(`{"email":"` + uniqueEmail() + `","password":"wrongPass123"}`)
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, h.rest+"/api/v1/auth/login", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", forged)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	for i, forged := range []string{"203.0.113.1", "203.0.113.2, 198.51.100.7"} {
		if code := restLogin(forged); code != http.StatusUnauthorized {
			t.Fatalf("REST failure %d = %d, want 401", i, code)
		}
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", "203.0.113.3")
	_, err := h.auth.Login(ctx, &customersv1.LoginRequest{Email: uniqueEmail(), Password: "wrongPass123"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC failure = %v, want Unauthenticated", err)
	}
	if code := restLogin("203.0.113.4"); code != http.StatusTooManyRequests {
		t.Errorf("REST attempt after 3 failures from this address = %d, want 429", code)
	}
	ctx = metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", "203.0.113.5")
	_, err = h.auth.Login(ctx, &customersv1.LoginRequest{Email: email, Password: "rightPass123"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC attempt after 3 failures from this address = %v, want ResourceExhausted", err)
	}
}

// TestWalkthrough follows README's walk-through over REST on both databases: register, log in,
// read and change one's account, and an admin's paged, searched list.
func TestWalkthrough(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, nil)
		reg := h.do(http.MethodPost, "/api/v1/users/", "", map[string]any{"email": "  New.User@Example.com ", "password": "newUserPass1", "first_name": "New"})
		if reg.Code != http.StatusCreated || reg.JSON["email"] != "new.user@example.com" || reg.JSON["is_admin"] != false {
			t.Fatalf("register = %d %s", reg.Code, reg.Raw)
		}
		if strings.Contains(string(reg.Raw), "newUserPass1") || strings.Contains(string(reg.Raw), "argon2") {
			t.Errorf("registration answer leaks the password or its hash: %s", reg.Raw)
		}
		if dup := h.do(http.MethodPost, "/api/v1/users", "", map[string]any{"email": "NEW.USER@example.com", "password": "newUserPass1"}); dup.Code != http.StatusConflict {
			t.Errorf("duplicate email = %d, want 409", dup.Code)
		}
		login := h.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "new.user@example.com", "password": "newUserPass1"})
		tok, _ := login.JSON["access_token"].(string)
		if login.Code != http.StatusOK || tok == "" || login.JSON["token_type"] != "Bearer" || login.JSON["expires_at"] == nil {
			t.Fatalf("login = %d %s", login.Code, login.Raw)
		}
		me := h.do(http.MethodGet, "/api/v1/users/me", tok, nil)
		if me.Code != http.StatusOK || me.JSON["id"] != reg.JSON["id"] {
			t.Fatalf("me = %d %s", me.Code, me.Raw)
		}
		patched := h.do(http.MethodPatch, "/api/v1/users/me", tok, map[string]any{"last_name": "Person"})
		if patched.JSON["last_name"] != "Person" || patched.JSON["first_name"] != "New" {
			t.Errorf("patch = %s: want last_name set and first_name kept", patched.Raw)
		}
		if empty := h.do(http.MethodPatch, "/api/v1/users/me", tok, "{}"); empty.Code != http.StatusOK || empty.JSON["updated_at"] != patched.JSON["updated_at"] {
			t.Errorf("empty patch = %d %s, want the user unchanged", empty.Code, empty.Raw)
		}

		admin := h.login("admin2@email.com", demoPassword)
		for i := range 5 {
			h.register(fmt.Sprintf("pager%d_%%@example.com", i), "pagerPass123")
		}
		var emails []string
		path := "/api/v1/users?page_size=2&search=" + "_%25"
		for range 10 {
			res := h.do(http.MethodGet, path, admin, nil)
			if res.Code != http.StatusOK {
				t.Fatalf("list = %d %s", res.Code, res.Raw)
			}
			var page struct {
				Users []struct {
					Email string `json:"email"`
				} `json:"users"`
				NextPageToken string `json:"next_page_token"`
			}
			res.Decode(t, &page)
			for _, u := range page.Users {
				emails = append(emails, u.Email)
			}
			next := page.NextPageToken
			if next == "" {
				break
			}
			path = "/api/v1/users?page_size=2&search=_%25&page_token=" + next
			// A token is bound to its search.
			if other := h.do(http.MethodGet, "/api/v1/users?page_token="+next, admin, nil); other.Code != http.StatusBadRequest {
				t.Errorf("token reused with another search = %d, want 400", other.Code)
			}
		}
		want := []string{"pager0_%@example.com", "pager1_%@example.com", "pager2_%@example.com", "pager3_%@example.com", "pager4_%@example.com"}
		if diff := cmp.Diff(want, emails); diff != "" {
			t.Errorf("paged search (-want +got):\n%s", diff)
		}

		// Nothing secret reaches the log.
		logs := h.logs.String()
		for _, secret := range []string{tok, admin, "newUserPass1", demoPassword, "argon2id", testSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains a secret (%.12s...)", secret)
			}
		}
	})
}

func TestValidateTokenHasNoRESTRoute(t *testing.T) {
	h := start(t, "sqlite", nil)
	tok := h.login("nonadmin3@email.com", demoPassword)
	for _, path := range []string{
		"/api/v1/auth/validate", "/api/v1/auth/validate-token", "/api/v1/auth/validateToken", "/customers.v1.AuthService/ValidateToken",
		"/api/v1/auth/validate-tokens", "/api/v1/auth/validateTokens", "/api/v1/auth/tokens:validate", "/customers.v1.AuthService/ValidateTokens",
	} {
		res := h.do(http.MethodPost, path, "", map[string]any{"token": tok, "tokens": []string{tok}})
		if res.Code != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", path, res.Code)
		}
	}
}
