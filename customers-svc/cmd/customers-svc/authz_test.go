package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/access"
	"github.com/acme/shop/foundation/database/dbtest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// identity is who makes a call in the authorization matrix.
type identity string

const (
	anonymous       identity = "anonymous"
	malformed       identity = "malformed header"
	garbage         identity = "garbage token"
	algNone         identity = "alg none token"
	otherKey        identity = "token signed with another key"
	altered         identity = "token with an altered payload"
	expired         identity = "expired token"
	revoked         identity = "logged-out token"
	deletedUser     identity = "token of a deleted user"
	passwordChanged identity = "token from before a password change"
	other           identity = "another user's token"
	owner           identity = "owner"
	admin           identity = "admin"
)

var identities = []identity{anonymous, malformed, garbage, algNone, otherKey, altered, expired, revoked, deletedUser, passwordChanged, other, owner, admin}

// invalid are the identities whose credentials are not valid: each must get what a garbage
// token gets.
var invalid = []identity{malformed, algNone, otherKey, altered, expired, revoked, deletedUser, passwordChanged}

// fixture is the user whose resources a matrix row acts on, with the authorization header
// value of every identity ("" for none).
type fixture struct {
	ownerID, ownerEmail string
	headers             map[identity]string
}

// token returns the bearer token of a valid identity.
func (f fixture) token(id identity) string { return strings.TrimPrefix(f.headers[id], "Bearer ") }

// forge signs claims for sub with key and method.
func forge(t testing.TB, method jwt.SigningMethod, key any, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, jwt.RegisteredClaims{
		Issuer: "customers", Subject: sub, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour)), ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// stale holds tokens that were valid once: of a deleted user, and from before a password
// change. They are made once per service.
type stale struct{ deleted, beforeChange string }

func newStale(h *harness) stale {
	h.t.Helper()
	var s stale
	email := uniqueEmail()
	h.register(email, "stalePass123")
	s.deleted = h.login(email, "stalePass123")
	if _, err := h.users.DeleteUser(withToken(s.deleted), &customersv1.DeleteUserRequest{UserId: "me"}); err != nil {
		h.t.Fatal(err)
	}
	email = uniqueEmail()
	h.register(email, "stalePass123")
	s.beforeChange = h.login(email, "stalePass123")
	if _, err := h.users.ChangePassword(withToken(s.beforeChange), &customersv1.ChangePasswordRequest{UserId: "me", CurrentPassword: "stalePass123", NewPassword: "freshPass123"}); err != nil {
		h.t.Fatal(err)
	}
	return s
}

var emailSeq atomic.Int64

func uniqueEmail() string {
	return fmt.Sprintf("user%d-%s@example.com", emailSeq.Add(1), uuid.NewString()[:8])
}

// newFixture registers a fresh owner and logs in every identity.
func newFixture(h *harness, st stale) fixture {
	h.t.Helper()
	email := uniqueEmail()
	u := h.register(email, "ownerPass123")
	stale := h.login(email, "ownerPass123")
	if _, err := h.auth.Logout(withToken(stale), &customersv1.LogoutRequest{}); err != nil {
		h.t.Fatal(err)
	}
	ownerToken := h.login(email, "ownerPass123")
	// The owner's valid token with its payload swapped for one naming an admin.
	parts := strings.Split(ownerToken, ".")
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"customers","sub":"00000000-0000-7000-8000-000000000001","jti":"x","iat":1,"exp":4102444800}`))
	bearer := func(tok string) string { return "Bearer " + tok }
	return fixture{
		ownerID: u.GetId(), ownerEmail: email,
		headers: map[identity]string{
			anonymous:       "",
			malformed:       "Token " + ownerToken,
			garbage:         bearer("garbage.token.value"),
			algNone:         bearer(forge(h.t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, u.GetId(), time.Now().Add(time.Hour))),
			otherKey:        bearer(forge(h.t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123"), u.GetId(), time.Now().Add(time.Hour))),
			altered:         bearer(parts[0] + "." + payload + "." + parts[2]),
			expired:         bearer(forge(h.t, jwt.SigningMethodHS256, []byte(testSecret), u.GetId(), time.Now().Add(-time.Hour))),
			revoked:         bearer(stale),
			deletedUser:     bearer(st.deleted),
			passwordChanged: bearer(st.beforeChange),
			other:           bearer(h.login("nonadmin4@email.com", demoPassword)),
			owner:           bearer(ownerToken),
			admin:           bearer(h.login("admin1@email.com", demoPassword)),
		},
	}
}

// rpc is one row group of the matrix: how to call an RPC over both transports and what each
// identity must get.
type rpc struct {
	method string // full gRPC method name
	call   func(ctx context.Context, h *harness, f fixture) error
	rest   func(f fixture) (method, path string, body any)
	// ok is the HTTP status of success over REST (200 unless created or empty).
	ok int
	// consumes says that a successful call uses up its fixture (revokes tokens or deletes the
	// owner), so each success needs a fixture of its own.
	consumes bool
	want     map[identity]codes.Code
}

// expect builds a row's expectations: what an anonymous caller gets, what any invalid
// credential gets, and what the three valid identities get.
func expect(anon, bad, oth, own, adm codes.Code) map[identity]codes.Code {
	m := map[identity]codes.Code{anonymous: anon, garbage: bad, other: oth, owner: own, admin: adm}
	for _, id := range invalid {
		m[id] = bad
	}
	return m
}

var (
	allowAll    = expect(codes.Unauthenticated, codes.Unauthenticated, codes.OK, codes.OK, codes.OK)
	selfOrAdmin = expect(codes.Unauthenticated, codes.Unauthenticated, codes.PermissionDenied, codes.OK, codes.OK)
	adminOnly   = expect(codes.Unauthenticated, codes.Unauthenticated, codes.PermissionDenied, codes.PermissionDenied, codes.OK)
	public      = expect(codes.OK, codes.OK, codes.OK, codes.OK, codes.OK)
)

func rpcs() []rpc {
	return []rpc{
		{
			method: customersv1.UserService_CreateUser_FullMethodName,
			call: func(ctx context.Context, h *harness, _ fixture) error {
				_, err := h.users.CreateUser(ctx, &customersv1.CreateUserRequest{Email: uniqueEmail(), Password: "newUserPass1"})
				return err
			},
			rest: func(fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/users", map[string]any{"email": uniqueEmail(), "password": "newUserPass1"}
			},
			ok: http.StatusCreated,
			// Registration is open, but a token that is sent must be valid.
			want: expect(codes.OK, codes.Unauthenticated, codes.OK, codes.OK, codes.OK),
		},
		{
			method: customersv1.AuthService_Login_FullMethodName,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.auth.Login(ctx, &customersv1.LoginRequest{Email: "nonadmin3@email.com", Password: demoPassword})
				return err
			},
			rest: func(fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/auth/login", map[string]any{"email": "nonadmin3@email.com", "password": demoPassword}
			},
			ok: http.StatusOK,
			// Login ignores any token sent with it.
			want: public,
		},
		{
			method:   customersv1.AuthService_Logout_FullMethodName,
			consumes: true,
			call: func(ctx context.Context, h *harness, _ fixture) error {
				_, err := h.auth.Logout(ctx, &customersv1.LogoutRequest{})
				return err
			},
			rest: func(fixture) (string, string, any) { return http.MethodPost, "/api/v1/auth/logout", map[string]any{} },
			ok:   http.StatusNoContent,
			want: allowAll,
		},
		{
			method: customersv1.UserService_ListUsers_FullMethodName,
			call: func(ctx context.Context, h *harness, _ fixture) error {
				_, err := h.users.ListUsers(ctx, &customersv1.ListUsersRequest{})
				return err
			},
			rest: func(fixture) (string, string, any) { return http.MethodGet, "/api/v1/users", nil },
			ok:   http.StatusOK,
			want: adminOnly,
		},
		{
			method: customersv1.UserService_GetUser_FullMethodName,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.users.GetUser(ctx, &customersv1.GetUserRequest{UserId: f.ownerID})
				return err
			},
			rest: func(f fixture) (string, string, any) { return http.MethodGet, "/api/v1/users/" + f.ownerID, nil },
			ok:   http.StatusOK,
			want: selfOrAdmin,
		},
		{
			method: customersv1.UserService_UpdateUser_FullMethodName,
			call: func(ctx context.Context, h *harness, f fixture) error {
				name := "Renamed"
				_, err := h.users.UpdateUser(ctx, &customersv1.UpdateUserRequest{UserId: f.ownerID, FirstName: &name})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodPatch, "/api/v1/users/" + f.ownerID, map[string]any{"first_name": "Renamed"}
			},
			ok:   http.StatusOK,
			want: selfOrAdmin,
		},
		{
			method:   customersv1.UserService_ChangePassword_FullMethodName,
			consumes: true,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.users.ChangePassword(ctx, &customersv1.ChangePasswordRequest{UserId: f.ownerID, CurrentPassword: "ownerPass123", NewPassword: "changedPass123"})
				return err
			},
			rest: func(f fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/users/" + f.ownerID + "/password", map[string]any{"current_password": "ownerPass123", "new_password": "changedPass123"}
			},
			ok:   http.StatusNoContent,
			want: selfOrAdmin,
		},
		{
			method:   customersv1.UserService_DeleteUser_FullMethodName,
			consumes: true,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.users.DeleteUser(ctx, &customersv1.DeleteUserRequest{UserId: f.ownerID})
				return err
			},
			rest: func(f fixture) (string, string, any) { return http.MethodDelete, "/api/v1/users/" + f.ownerID, nil },
			ok:   http.StatusNoContent,
			want: selfOrAdmin,
		},
		{
			method: customersv1.AuthService_ValidateToken_FullMethodName,
			call: func(ctx context.Context, h *harness, f fixture) error {
				_, err := h.auth.ValidateToken(ctx, &customersv1.ValidateTokenRequest{Token: f.token(owner)})
				return err
			},
			// gRPC only: there is no REST route (TestValidateTokenHasNoRESTRoute).
			want: public,
		},
	}
}

// TestAuthorizationMatrix calls every customers RPC as every identity, over gRPC and over
// REST, and checks the answer. A new RPC without a row fails the test.
func TestAuthorizationMatrix(t *testing.T) {
	rows := rpcs()
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.method] = true
		if len(r.want) != len(identities) {
			t.Errorf("%s expects codes for %d identities, want all %d", r.method, len(r.want), len(identities))
		}
		// The matrix restates API.md; the proto's access option is what the interceptor enforces.
		if declared, anon := access.Of(r.method), r.want[anonymous]; (declared == access.Required) != (anon == codes.Unauthenticated) {
			t.Errorf("%s: the matrix expects %v without a token, but the proto declares %v", r.method, anon, declared)
		}
	}
	for _, m := range allMethods() {
		if !covered[m] {
			t.Errorf("RPC %s has no row in the authorization matrix", m)
		}
	}

	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, map[string]string{"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR": "100000"})
		st := newStale(h)
		shared := newFixture(h, st)
		for _, r := range rows {
			for _, id := range identities {
				want := r.want[id]
				fresh := r.consumes && want == codes.OK
				f := shared
				if fresh {
					f = newFixture(h, st)
				}
				t.Run(fmt.Sprintf("grpc/%s/%s", r.method, id), func(t *testing.T) {
					err := r.call(withHeader(f.headers[id]), h, f)
					if got := status.Code(err); got != want {
						t.Errorf("got %v (%v), want %v", got, err, want)
					}
				})
				if r.rest == nil {
					continue
				}
				if fresh {
					f = newFixture(h, st)
				}
				t.Run(fmt.Sprintf("rest/%s/%s", r.method, id), func(t *testing.T) {
					method, path, body := r.rest(f)
					res := h.doHeader(method, path, f.headers[id], body)
					wantHTTP := runtime.HTTPStatusFromCode(want)
					if want == codes.OK {
						wantHTTP = r.ok
					}
					if res.Code != wantHTTP {
						t.Errorf("%s %s got %d (%s), want %d", method, path, res.Code, res.Raw, wantHTTP)
					}
				})
			}
		}
	})
}

// allMethods lists every RPC the customers service serves, from the generated descriptors.
func allMethods() []string {
	var out []string
	for _, sd := range []grpc.ServiceDesc{customersv1.UserService_ServiceDesc, customersv1.AuthService_ServiceDesc} {
		for _, m := range sd.Methods {
			out = append(out, "/"+sd.ServiceName+"/"+m.MethodName)
		}
	}
	return out
}
