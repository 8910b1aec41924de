package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/database/dbtest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/grpcapi"
)

// identity is who makes a call in the authorization matrix.
type identity string

const (
	anonymous identity = "anonymous"
	garbage   identity = "garbage token"
	expired   identity = "expired token"
	revoked   identity = "revoked token"
	other     identity = "another user's token"
	owner     identity = "owner"
	admin     identity = "admin"
)

var identities = []identity{anonymous, garbage, expired, revoked, other, owner, admin}

// fixture is the user whose resources a matrix row acts on, with the tokens of every identity.
type fixture struct {
	ownerID, ownerEmail string
	tokens              map[identity]string
}

var emailSeq atomic.Int64

func uniqueEmail() string {
	return fmt.Sprintf("user%d-%s@example.com", emailSeq.Add(1), uuid.NewString()[:8])
}

// newFixture registers a fresh owner and logs in every identity. Identities that a call could
// consume (logout, delete, password change) get fresh tokens each time.
func newFixture(h *harness) fixture {
	h.t.Helper()
	email := uniqueEmail()
	u := h.register(email, "ownerPass123")
	stale := h.login(email, "ownerPass123")
	if _, err := h.auth.Logout(withToken(stale), &customersv1.LogoutRequest{}); err != nil {
		h.t.Fatal(err)
	}
	expiredToken, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "customers", Subject: u.GetId(), ID: uuid.NewString(),
		IssuedAt:  jwt.NewNumericDate(time.Now().Add(-2 * time.Hour)),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour)),
	}).SignedString([]byte(testSecret))
	if err != nil {
		h.t.Fatal(err)
	}
	return fixture{
		ownerID: u.GetId(), ownerEmail: email,
		tokens: map[identity]string{
			anonymous: "",
			garbage:   "garbage.token.value",
			expired:   expiredToken,
			revoked:   stale,
			other:     h.login("nonadmin4@email.com", demoPassword),
			owner:     h.login(email, "ownerPass123"),
			admin:     h.login("admin1@email.com", demoPassword),
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

// allowAll is the expectation of an RPC that any valid token may call.
func allowAll(ok codes.Code) map[identity]codes.Code {
	return map[identity]codes.Code{anonymous: codes.Unauthenticated, garbage: codes.Unauthenticated, expired: codes.Unauthenticated, revoked: codes.Unauthenticated, other: ok, owner: ok, admin: ok}
}

// selfOrAdmin is the expectation of an RPC on the owner's account.
var selfOrAdmin = map[identity]codes.Code{anonymous: codes.Unauthenticated, garbage: codes.Unauthenticated, expired: codes.Unauthenticated, revoked: codes.Unauthenticated, other: codes.PermissionDenied, owner: codes.OK, admin: codes.OK}

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
			want: map[identity]codes.Code{anonymous: codes.OK, garbage: codes.Unauthenticated, expired: codes.Unauthenticated, revoked: codes.Unauthenticated, other: codes.OK, owner: codes.OK, admin: codes.OK},
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
			want: map[identity]codes.Code{anonymous: codes.OK, garbage: codes.OK, expired: codes.OK, revoked: codes.OK, other: codes.OK, owner: codes.OK, admin: codes.OK},
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
			want: allowAll(codes.OK),
		},
		{
			method: customersv1.UserService_ListUsers_FullMethodName,
			call: func(ctx context.Context, h *harness, _ fixture) error {
				_, err := h.users.ListUsers(ctx, &customersv1.ListUsersRequest{})
				return err
			},
			rest: func(fixture) (string, string, any) { return http.MethodGet, "/api/v1/users", nil },
			ok:   http.StatusOK,
			want: map[identity]codes.Code{anonymous: codes.Unauthenticated, garbage: codes.Unauthenticated, expired: codes.Unauthenticated, revoked: codes.Unauthenticated, other: codes.PermissionDenied, owner: codes.PermissionDenied, admin: codes.OK},
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
				_, err := h.auth.ValidateToken(ctx, &customersv1.ValidateTokenRequest{Token: f.tokens[owner]})
				return err
			},
			// gRPC only: there is no REST route (TestValidateTokenHasNoRESTRoute).
			want: map[identity]codes.Code{anonymous: codes.OK, garbage: codes.OK, expired: codes.OK, revoked: codes.OK, other: codes.OK, owner: codes.OK, admin: codes.OK},
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
	}
	for _, m := range allMethods() {
		if !covered[m] {
			t.Errorf("RPC %s has no row in the authorization matrix", m)
		}
	}

	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := start(t, dialect, map[string]string{"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR": "100000"})
			shared := newFixture(h)
			for _, r := range rows {
				for _, id := range identities {
					want := r.want[id]
					fresh := r.consumes && want == codes.OK
					f := shared
					if fresh {
						f = newFixture(h)
					}
					t.Run(fmt.Sprintf("grpc/%s/%s", r.method, id), func(t *testing.T) {
						err := r.call(withToken(f.tokens[id]), h, f)
						if got := status.Code(err); got != want {
							t.Errorf("got %v (%v), want %v", got, err, want)
						}
					})
					if r.rest == nil {
						continue
					}
					if fresh {
						f = newFixture(h)
					}
					t.Run(fmt.Sprintf("rest/%s/%s", r.method, id), func(t *testing.T) {
						method, path, body := r.rest(f)
						res := h.do(method, path, f.tokens[id], body)
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

// TestPublicMethodsAreDeclared pins the allow-list: exactly these RPCs can be reached without
// a token; the matrix above proves every other one answers UNAUTHENTICATED.
func TestPublicMethodsAreDeclared(t *testing.T) {
	public := map[string]bool{
		customersv1.AuthService_Login_FullMethodName:         true,
		customersv1.AuthService_ValidateToken_FullMethodName: true,
		customersv1.UserService_CreateUser_FullMethodName:    true,
	}
	for _, m := range allMethods() {
		if got := grpcapi.IsPublic(m); got != public[m] {
			t.Errorf("IsPublic(%s) = %v, want %v", m, got, public[m])
		}
	}
}
