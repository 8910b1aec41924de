package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/acme/shop/foundation/access/accesstest"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// fixture is the user whose resources a matrix row acts on, with the authorization header
// value of every identity ("" for none).
type fixture struct {
	ownerID, ownerEmail, ownerToken string
	headers                         map[accesstest.Identity]string
}

// Header returns the identity's authorization header value.
func (f fixture) Header(id accesstest.Identity) string { return f.headers[id] }

// stale holds tokens that were valid once: of a deleted user, and from before a password
// change. They are made once per service.
type stale struct{ deleted, beforeChange string }

func newStale(h *harness) stale {
	h.t.Helper()
	var s stale
	email := uniqueEmail()
	h.register(email, "stalePass123")
	s.deleted = h.login(email, "stalePass123")
	if _, err := h.users.DeleteUser(withToken(s.deleted), &customersv1.DeleteUserRequest{UserId: "me", CurrentPassword: "stalePass123"}); err != nil {
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
	loggedOut := h.login(email, "ownerPass123")
	if _, err := h.auth.Logout(withToken(loggedOut), &customersv1.LogoutRequest{}); err != nil {
		h.t.Fatal(err)
	}
	tokens := accesstest.Tokens{
		Owner: h.login(email, "ownerPass123"), LoggedOut: loggedOut,
		Deleted: st.deleted, BeforePasswordChange: st.beforeChange,
		Other: h.login("nonadmin4@email.com", demoPassword), Admin: h.login("admin1@email.com", demoPassword),
	}
	return fixture{
		ownerID: u.GetId(), ownerEmail: email, ownerToken: tokens.Owner,
		headers: accesstest.Headers(h.t, testSecret, u.GetId(), tokens),
	}
}

// userETag returns the current etag of the fixture's owner, read by the owner.
func userETag(h *harness, f fixture) (string, error) {
	res, err := h.users.GetUser(withToken(f.ownerToken), &customersv1.GetUserRequest{UserId: f.ownerID})
	return res.GetUser().GetEtag(), err
}

// row is one RPC of the customers authorization matrix.
type row = accesstest.Row[*harness, fixture]

// rpcs are the rows of every customers RPC: how to call it, and what each identity gets.
func rpcs() []row {
	return []row{
		{
			Method: customersv1.UserService_CreateUser_FullMethodName,
			GRPC: func(ctx context.Context, h *harness, _ fixture, _ string) error {
				return grpctest.Err(h.users.CreateUser(ctx, &customersv1.CreateUserRequest{Email: uniqueEmail(), Password: "newUserPass1"}))
			},
			REST: func(fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/users", map[string]any{"email": uniqueEmail(), "password": "newUserPass1"}
			},
			OK: http.StatusCreated,
			// Registration is open, but a token that is sent must be valid.
			Want: accesstest.Expect(codes.OK, codes.Unauthenticated, codes.OK, codes.OK, codes.OK),
		},
		{
			Method: customersv1.AuthService_Login_FullMethodName,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.auth.Login(ctx, &customersv1.LoginRequest{Email: "nonadmin3@email.com", Password: demoPassword}))
			},
			REST: func(fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/auth/login", map[string]any{"email": "nonadmin3@email.com", "password": demoPassword}
			},
			OK: http.StatusOK,
			// Login ignores any token sent with it.
			Want: accesstest.Public,
		},
		{
			Method:   customersv1.AuthService_Logout_FullMethodName,
			Consumes: true,
			GRPC: func(ctx context.Context, h *harness, _ fixture, _ string) error {
				return grpctest.Err(h.auth.Logout(ctx, &customersv1.LogoutRequest{}))
			},
			REST: func(fixture) (string, string, any) { return http.MethodPost, "/api/v1/auth/logout", map[string]any{} },
			OK:   http.StatusNoContent,
			Want: accesstest.SignedIn,
		},
		{
			Method: customersv1.UserService_ListUsers_FullMethodName,
			GRPC: func(ctx context.Context, h *harness, _ fixture, _ string) error {
				return grpctest.Err(h.users.ListUsers(ctx, &customersv1.ListUsersRequest{}))
			},
			REST: func(fixture) (string, string, any) { return http.MethodGet, "/api/v1/users", nil },
			OK:   http.StatusOK,
			Want: accesstest.AdminOnly,
		},
		{
			Method: customersv1.UserService_GetUser_FullMethodName,
			ETag:   userETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.users.GetUser(ctx, &customersv1.GetUserRequest{UserId: f.ownerID}))
			},
			REST: func(f fixture) (string, string, any) { return http.MethodGet, "/api/v1/users/" + f.ownerID, nil },
			OK:   http.StatusOK,
			Want: accesstest.OwnerOrAdmin,
		},
		{
			Method: customersv1.UserService_UpdateUser_FullMethodName,
			ETag:   userETag,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.users.UpdateUser(ctx, &customersv1.UpdateUserRequest{UserId: f.ownerID, FirstName: proto.String("Renamed"), Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodPatch, "/api/v1/users/" + f.ownerID, map[string]any{"first_name": "Renamed"}
			},
			OK:   http.StatusOK,
			Want: accesstest.OwnerOrAdmin,
		},
		{
			Method:   customersv1.UserService_ChangePassword_FullMethodName,
			Consumes: true,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.users.ChangePassword(ctx, &customersv1.ChangePasswordRequest{UserId: f.ownerID, CurrentPassword: "ownerPass123", NewPassword: "changedPass123"}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodPost, "/api/v1/users/" + f.ownerID + "/password", map[string]any{"current_password": "ownerPass123", "new_password": "changedPass123"}
			},
			OK:   http.StatusNoContent,
			Want: accesstest.OwnerOrAdmin,
		},
		{
			Method:   customersv1.UserService_DeleteUser_FullMethodName,
			ETag:     userETag,
			Consumes: true,
			GRPC: func(ctx context.Context, h *harness, f fixture, etag string) error {
				return grpctest.Err(h.users.DeleteUser(ctx, &customersv1.DeleteUserRequest{UserId: f.ownerID, CurrentPassword: "ownerPass123", Etag: etag}))
			},
			REST: func(f fixture) (string, string, any) {
				return http.MethodDelete, "/api/v1/users/" + f.ownerID, map[string]any{"current_password": "ownerPass123"}
			},
			OK:   http.StatusNoContent,
			Want: accesstest.OwnerOrAdmin,
		},
		{
			Method: customersv1.AuthService_ValidateToken_FullMethodName,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.auth.ValidateToken(ctx, &customersv1.ValidateTokenRequest{Token: f.ownerToken}))
			},
			// gRPC only: there is no REST route (TestValidateTokenHasNoRESTRoute).
			Want: accesstest.Public,
		},
		{
			Method: customersv1.AuthService_ValidateTokens_FullMethodName,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.auth.ValidateTokens(ctx, &customersv1.ValidateTokensRequest{Tokens: []string{f.ownerToken}}))
			},
			// gRPC only: there is no REST route (TestValidateTokenHasNoRESTRoute).
			Want: accesstest.Public,
		},
		{
			Method: customersv1.UserService_ExistingUsers_FullMethodName,
			GRPC: func(ctx context.Context, h *harness, f fixture, _ string) error {
				return grpctest.Err(h.users.ExistingUsers(ctx, &customersv1.ExistingUsersRequest{UserIds: []string{f.ownerID}}))
			},
			// gRPC only, like ValidateTokens: internal, and in production behind mutual TLS.
			Want: accesstest.Public,
		},
	}
}

// TestAuthorizationMatrix calls every customers RPC as every identity, over gRPC and over
// REST, and checks the answer. A new RPC without a row fails the test.
func TestAuthorizationMatrix(t *testing.T) {
	rows := rpcs()
	accesstest.Check(t, rows, customersv1.UserService_ServiceDesc, customersv1.AuthService_ServiceDesc)
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		// Every fixture logs the other user and the admin in again: the first fixture's sessions
		// must outlive the cap on a user's sessions.
		h := start(t, dialect, map[string]string{"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR": "100000", "CUSTOMERS_MAX_SESSIONS_PER_USER": "10000"})
		st := newStale(h)
		accesstest.Run(t, rows, h, h.rest, func() fixture { return newFixture(h, st) })
	})
}
