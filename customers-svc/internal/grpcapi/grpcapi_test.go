package grpcapi_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/pagetoken"
	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/service"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
	"github.com/acme/shop/customers-svc/internal/grpcapi"
	"github.com/acme/shop/customers-svc/internal/migrations"
	"github.com/acme/shop/customers-svc/internal/password"
	"github.com/acme/shop/customers-svc/internal/token"
)

const (
	adminEmail = "boss@example.com"
	pw         = "password1"
	// maxFailures is the login throttle's limit per (email, address) under test.
	maxFailures = 3
	// tokenSecret signs the tests' access tokens.
	tokenSecret = "test-secret-test-secret-test-secret-0123"
)

type clients struct {
	users   customersv1.UserServiceClient
	auth    customersv1.AuthServiceClient
	metrics *grpcapi.Metrics
}

// start serves the handlers on a fresh SQLite database through the production interceptor
// chain (grpcserver with customers' auth interceptor and error map), over a loopback
// connection. One admin exists: adminEmail with password pw.
func start(t *testing.T) clients {
	t.Helper()
	store := dbtest.Store(t, "sqlite", migrations.All(false), customerdb.New)
	tokens, err := token.New(secret.New(tokenSecret), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cheap := argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	metrics := grpcapi.NewMetrics()
	svc, err := customer.NewService(store, password.New(cheap, 0), tokens,
		customer.NewThrottle(store, customer.Limits{
			Window: time.Minute, PerEmailAddr: maxFailures, PerAddr: 1000, PerEmail: 1000,
			RegisterWindow: time.Minute, RegisterPerAddr: 1000,
		}),
		customer.Options{TokenTTL: time.Hour, NewID: service.NewID, PasswordChecked: metrics.PasswordChecked})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(context.Background(), &customer.Caller{IsAdmin: true}, customer.NewUser{Email: adminEmail, Password: pw, IsAdmin: true}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	opts := grpcserver.Options{Auth: grpcapi.AuthInterceptor(svc), Errors: grpcapi.Errors, Unavailable: database.IsUnavailable}
	_, conn := grpctest.Serve(t, opts, func(srv grpc.ServiceRegistrar) {
		customersv1.RegisterUserServiceServer(srv, grpcapi.NewUserServer(svc, pagetoken.New(secret.New("test page-token key"), "test")))
		customersv1.RegisterAuthServiceServer(srv, grpcapi.NewAuthServer(svc, metrics))
	})
	return clients{users: customersv1.NewUserServiceClient(conn), auth: customersv1.NewAuthServiceClient(conn), metrics: metrics}
}

// register creates a non-admin user and returns them with an access token.
func (c clients) register(t *testing.T, email string) (*customersv1.User, string) {
	t.Helper()
	res, err := c.users.CreateUser(t.Context(), &customersv1.CreateUserRequest{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return res.GetUser(), c.login(t, email)
}

func (c clients) login(t *testing.T, email string) string {
	t.Helper()
	res, err := c.auth.Login(t.Context(), &customersv1.LoginRequest{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return res.GetAccessToken()
}

func TestUserConversion(t *testing.T) {
	c := start(t)
	created, err := c.users.CreateUser(t.Context(), &customersv1.CreateUserRequest{
		Email: "  Ada@Example.COM ", Password: pw, FirstName: "Ada", LastName: "Lovelace",
	})
	if err != nil {
		t.Fatal(err)
	}
	u := created.GetUser()
	grpctest.CheckCreated(t, &customersv1.User{Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"}, u)

	before := time.Now()
	login, err := c.auth.Login(t.Context(), &customersv1.LoginRequest{Email: "ADA@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if login.GetTokenType() != "Bearer" || login.GetAccessToken() == "" || !login.GetExpiresAt().AsTime().After(before) {
		t.Errorf("login answered %v: want a Bearer token that expires later", login)
	}
	if diff := cmp.Diff(u, login.GetUser(), protocmp.Transform()); diff != "" {
		t.Errorf("login's user (-created +login):\n%s", diff)
	}
	v, err := c.auth.ValidateToken(t.Context(), &customersv1.ValidateTokenRequest{Token: login.GetAccessToken()})
	if err != nil {
		t.Fatal(err)
	}
	wantV := &customersv1.ValidateTokenResponse{UserId: u.GetId(), Email: "ada@example.com"}
	if diff := cmp.Diff(wantV, v, protocmp.Transform()); diff != "" {
		t.Errorf("ValidateToken (-want +got):\n%s", diff)
	}
}

func TestMe(t *testing.T) {
	c := start(t)
	ada, adaToken := c.register(t, "ada@example.com")
	_, bobToken := c.register(t, "bob@example.com")
	adminToken := c.login(t, adminEmail)
	tests := []struct {
		name, token, userID string
		want                codes.Code
	}{
		{"me", adaToken, "me", codes.OK},
		{"own ID in upper case", adaToken, strings.ToUpper(ada.GetId()), codes.OK},
		{"admin, by ID", adminToken, ada.GetId(), codes.OK},
		{"another user", bobToken, ada.GetId(), codes.PermissionDenied},
		{"another, unknown user", bobToken, uuid.NewString(), codes.PermissionDenied},
		{"admin, unknown user", adminToken, uuid.NewString(), codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.users.GetUser(grpctest.As(t, tt.token), &customersv1.GetUserRequest{UserId: tt.userID})
			grpctest.CheckError(t, err, tt.want)
			if diff := cmp.Diff(ada, res.GetUser(), protocmp.Transform()); err == nil && diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}

// TestErrors checks the status code, and the BadRequest fields of INVALID_ARGUMENT, of every
// way a call can fail, whether the rule lives in the proto (protovalidate), in the domain, in
// the store or in the auth interceptor. The calls run in the table's order.
func TestErrors(t *testing.T) {
	c := start(t)
	ada, adaToken := c.register(t, "ada@example.com")
	anonymous, byAda, byAdmin := t.Context(), grpctest.As(t, adaToken), grpctest.As(t, c.login(t, adminEmail))
	register := func(ctx context.Context, req *customersv1.CreateUserRequest) error {
		return grpctest.Err(c.users.CreateUser(ctx, req))
	}
	login := func(email, password string) error {
		return grpctest.Err(c.auth.Login(anonymous, &customersv1.LoginRequest{Email: email, Password: password}))
	}
	changePassword := func(current, next string) error {
		return grpctest.Err(c.users.ChangePassword(byAda, &customersv1.ChangePasswordRequest{UserId: "me", CurrentPassword: current, NewPassword: next}))
	}
	list := func(ctx context.Context, pageToken string) error {
		return grpctest.Err(c.users.ListUsers(ctx, &customersv1.ListUsersRequest{PageToken: pageToken}))
	}
	long := strings.Repeat("x", 101)
	tests := []struct {
		name   string
		err    error
		want   codes.Code
		fields []string
	}{
		{"not an email (proto)", register(anonymous, &customersv1.CreateUserRequest{Email: "nope", Password: pw}), codes.InvalidArgument, []string{"email"}},
		{"no dot in the domain (domain)", register(anonymous, &customersv1.CreateUserRequest{Email: "ada@localhost", Password: pw}), codes.InvalidArgument, []string{"email"}},
		{"every other field too short or long (proto)", register(anonymous, &customersv1.CreateUserRequest{
			Email: "x@example.com", Password: "short", FirstName: long, LastName: long,
		}), codes.InvalidArgument, []string{"password", "first_name", "last_name"}},
		{"email taken, other case (store)", register(anonymous, &customersv1.CreateUserRequest{Email: "ADA@example.com", Password: pw}), codes.AlreadyExists, nil},
		{"anonymous creates an admin", register(anonymous, &customersv1.CreateUserRequest{Email: "x@example.com", Password: pw, IsAdmin: true}), codes.PermissionDenied, nil},
		{"non-admin creates an admin", register(byAda, &customersv1.CreateUserRequest{Email: "x@example.com", Password: pw, IsAdmin: true}), codes.PermissionDenied, nil},
		{"self-promotion", grpctest.Err(c.users.UpdateUser(byAda, &customersv1.UpdateUserRequest{UserId: "me", IsAdmin: proto.Bool(true)})), codes.PermissionDenied, nil},
		{"changed email not an email (domain)", grpctest.Err(c.users.UpdateUser(byAda, &customersv1.UpdateUserRequest{UserId: "me", Email: proto.String("a..b@example.com")})), codes.InvalidArgument, []string{"email"}},
		{"wrong password", login("ada@example.com", "wrong-password"), codes.Unauthenticated, nil},
		{"unknown email", login("nobody@example.com", pw), codes.Unauthenticated, nil},
		{"invalid token (auth interceptor)", grpctest.Err(c.users.GetUser(grpctest.As(t, "forged-token"), &customersv1.GetUserRequest{UserId: "me"})), codes.Unauthenticated, nil},
		{"no token", grpctest.Err(c.users.GetUser(anonymous, &customersv1.GetUserRequest{UserId: "me"})), codes.Unauthenticated, nil},
		{"ValidateToken of a forged token", grpctest.Err(c.auth.ValidateToken(anonymous, &customersv1.ValidateTokenRequest{Token: forgedToken})), codes.Unauthenticated, nil},
		{"ValidateToken of a malformed token (proto)", grpctest.Err(c.auth.ValidateToken(anonymous, &customersv1.ValidateTokenRequest{Token: "forged-token"})), codes.InvalidArgument, []string{"token"}},
		{"ValidateToken of an empty token (proto)", grpctest.Err(c.auth.ValidateToken(anonymous, &customersv1.ValidateTokenRequest{})), codes.InvalidArgument, []string{"token"}},
		{"ValidateToken of 4,097 bytes (proto)", grpctest.Err(c.auth.ValidateToken(anonymous, &customersv1.ValidateTokenRequest{Token: strings.Repeat("x", 4093) + ".y.z"})), codes.InvalidArgument, []string{"token"}},
		{"ValidateToken of 4,000 four-byte characters (proto)", grpctest.Err(c.auth.ValidateToken(anonymous, &customersv1.ValidateTokenRequest{Token: strings.Repeat("\U0001F600", 4000)})), codes.InvalidArgument, []string{"token"}},
		{"ValidateTokens of no token", grpctest.Err(c.auth.ValidateTokens(anonymous, &customersv1.ValidateTokensRequest{})), codes.InvalidArgument, []string{"tokens"}},
		{"ValidateTokens of 129 tokens", grpctest.Err(c.auth.ValidateTokens(anonymous, &customersv1.ValidateTokensRequest{Tokens: slices.Repeat([]string{adaToken}, 129)})), codes.InvalidArgument, []string{"tokens"}},
		{"own password change without the current one (domain)", changePassword("", "password2"), codes.InvalidArgument, []string{"current_password"}},
		{"own password change with a wrong current one (domain)", changePassword("wrong-password", "password2"), codes.InvalidArgument, []string{"current_password"}},
		{"new password too short (proto)", changePassword(pw, "short"), codes.InvalidArgument, []string{"new_password"}},
		{"delete an unknown user as admin", grpctest.Err(c.users.DeleteUser(byAdmin, &customersv1.DeleteUserRequest{UserId: uuid.NewString()})), codes.NotFound, nil},
		{"delete another user", grpctest.Err(c.users.DeleteUser(byAda, &customersv1.DeleteUserRequest{UserId: uuid.NewString()})), codes.PermissionDenied, nil},
		{"own email change without the current password (domain)", grpctest.Err(c.users.UpdateUser(byAda, &customersv1.UpdateUserRequest{UserId: "me", Email: proto.String("ada2@example.com")})), codes.InvalidArgument, []string{"current_password"}},
		{"own deletion with a wrong current password (domain)", grpctest.Err(c.users.DeleteUser(byAda, &customersv1.DeleteUserRequest{UserId: "me", CurrentPassword: "wrong-password"})), codes.InvalidArgument, []string{"current_password"}},
		{"demote the last admin (store)", grpctest.Err(c.users.UpdateUser(byAdmin, &customersv1.UpdateUserRequest{UserId: "me", IsAdmin: proto.Bool(false)})), codes.Aborted, nil},
		{"delete the last admin (store)", grpctest.Err(c.users.DeleteUser(byAdmin, &customersv1.DeleteUserRequest{UserId: "me", CurrentPassword: pw})), codes.Aborted, nil},
		{"list as non-admin", list(byAda, ""), codes.PermissionDenied, nil},
		{"forged page token as non-admin", list(byAda, "Zm9yZ2Vk"), codes.PermissionDenied, nil},
		{"forged page token as admin", list(byAdmin, "Zm9yZ2Vk"), codes.InvalidArgument, []string{"page_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { grpctest.CheckError(t, tt.err, tt.want, tt.fields...) })
	}
	res, err := c.users.GetUser(byAda, &customersv1.GetUserRequest{UserId: "me"})
	if diff := cmp.Diff(ada, res.GetUser(), protocmp.Transform()); err != nil || diff != "" {
		t.Errorf("after the rejected calls: %v (-before +after):\n%s", err, diff)
	}
}

// TestThrottledLoginRetryAfter checks that a throttled login is RESOURCE_EXHAUSTED with a
// retry-after header in whole seconds, which the gateway answers as 429 with Retry-After.
func TestThrottledLoginRetryAfter(t *testing.T) {
	c := start(t)
	c.register(t, "ada@example.com")
	wrong := &customersv1.LoginRequest{Email: "ada@example.com", Password: "wrong-password"}
	for i := range maxFailures {
		var header metadata.MD
		_, err := c.auth.Login(t.Context(), wrong, grpc.Header(&header))
		if status.Code(err) != codes.Unauthenticated || len(header.Get("retry-after")) != 0 {
			t.Fatalf("failure %d: %v with retry-after %v, want Unauthenticated without", i+1, err, header.Get("retry-after"))
		}
	}
	var header metadata.MD
	_, err := c.auth.Login(t.Context(), &customersv1.LoginRequest{Email: "ada@example.com", Password: pw}, grpc.Header(&header))
	if got := status.Code(err); got != codes.ResourceExhausted {
		t.Fatalf("login past the limit: code %v, want ResourceExhausted", got)
	}
	got := header.Get("retry-after")
	if len(got) != 1 {
		t.Fatalf("retry-after %v, want one value", got)
	}
	if secs, err := strconv.Atoi(got[0]); err != nil || secs < 1 || secs > int(time.Minute.Seconds()) {
		t.Errorf("retry-after %q, want whole seconds within the throttle's window", got[0])
	}
}

func TestListUsersPageTokens(t *testing.T) {
	c := start(t)
	for _, email := range []string{"shopper0@example.com", "someone.else@example.com", "shopper1@example.com", "shopper2@example.com"} {
		c.register(t, email)
	}
	byAdmin := grpctest.As(t, c.login(t, adminEmail))

	// Page through the users whose email matches, two at a time, as a client does.
	var emails, tokens []string
	req := &customersv1.ListUsersRequest{Search: "SHOPPER", PageSize: 2}
	for {
		res, err := c.users.ListUsers(byAdmin, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range res.GetUsers() {
			emails = append(emails, u.GetEmail())
		}
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" || len(tokens) > 3 {
			break
		}
		tokens = append(tokens, req.PageToken)
	}
	if diff := cmp.Diff([]string{"shopper0@example.com", "shopper1@example.com", "shopper2@example.com"}, emails); diff != "" {
		t.Errorf("emails of every page (-want +got):\n%s", diff)
	}
	if len(tokens) != 1 {
		t.Fatalf("%d page tokens, want 1 (two pages)", len(tokens))
	}
	// The token continues only the search it was issued for.
	_, err := c.users.ListUsers(byAdmin, &customersv1.ListUsersRequest{Search: "else", PageToken: tokens[0]})
	grpctest.CheckError(t, err, codes.InvalidArgument, "page_token")
}

// TestBusyHashingIsResourceExhausted: a full hashing queue, however wrapped, is
// RESOURCE_EXHAUSTED, never a 500, and through the server's chain the call says when to retry
// in its retry-after header (which the gateway answers as Retry-After: C/abuse_test.go
// TestFullHashingQueueSaysRetryAfter).
func TestBusyHashingIsResourceExhausted(t *testing.T) {
	opts := grpcserver.Options{Errors: grpcapi.Errors, Unavailable: database.IsUnavailable}
	_, conn := grpctest.Serve(t, opts, func(srv grpc.ServiceRegistrar) {
		customersv1.RegisterUserServiceServer(srv, busyUsers{})
	})
	var header metadata.MD
	_, err := customersv1.NewUserServiceClient(conn).CreateUser(t.Context(),
		&customersv1.CreateUserRequest{Email: "ada@example.com", Password: pw}, grpc.Header(&header))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("CreateUser with the hashing queue full = %v, want ResourceExhausted", err)
	}
	if got := header.Get("retry-after"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("retry-after header = %q, want [1]", got)
	}
}

// busyUsers answers registrations as a service whose hashing queue is full.
type busyUsers struct {
	customersv1.UnimplementedUserServiceServer
}

func (busyUsers) CreateUser(context.Context, *customersv1.CreateUserRequest) (*customersv1.CreateUserResponse, error) {
	return nil, fmt.Errorf("hash password: %w", password.ErrBusy)
}

// forgedToken has the shape of a token (three segments of the JWT alphabet) but no valid
// signature.
const forgedToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.Zm9yZ2Vk"

// TestValidateTokens checks valid, forged, expired and revoked tokens in one call: one result
// per token, in the order asked, with the user of each valid one (a repeated token included);
// malformed tokens are invalid results, not an error of the call; and the largest batch the
// contract allows is answered.
func TestValidateTokens(t *testing.T) {
	c := start(t)
	ada, adaToken := c.register(t, "ada@example.com")
	_, bobToken := c.register(t, "bob@example.com")
	if _, err := c.auth.Logout(grpctest.As(t, bobToken), &customersv1.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	adminToken := c.login(t, adminEmail)
	admin, err := c.auth.ValidateToken(t.Context(), &customersv1.ValidateTokenRequest{Token: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	past, err := token.New(secret.New(tokenSecret), func() time.Time { return time.Now().Add(-2 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	expired, err := past.Issue(customer.Claims{UserID: ada.GetId(), SessionID: uuid.NewString()}, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	res, err := c.auth.ValidateTokens(t.Context(), &customersv1.ValidateTokensRequest{
		Tokens: []string{adaToken, forgedToken, expired, bobToken, adminToken, adaToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	adaValid := &customersv1.TokenValidation{Valid: true, UserId: ada.GetId(), Email: "ada@example.com"}
	invalid := &customersv1.TokenValidation{}
	want := &customersv1.ValidateTokensResponse{Results: []*customersv1.TokenValidation{
		adaValid, invalid, invalid, invalid,
		{Valid: true, UserId: admin.GetUserId(), Email: adminEmail, IsAdmin: true},
		adaValid,
	}}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("ValidateTokens (-want +got):\n%s", diff)
	}

	// A token that breaks ValidateTokenRequest's rule is a result with valid false, like any
	// invalid token: it fails neither the call nor the tokens checked with it.
	malformed := []string{"", "forged-token", "a.b", "a.b.c.d", "a b.c.d", "a+/=.b.c", strings.Repeat("x", 4093) + ".y.z", strings.Repeat("\U0001F600", 4000)}
	res, err = c.auth.ValidateTokens(t.Context(), &customersv1.ValidateTokensRequest{Tokens: append(slices.Clone(malformed), adaToken)})
	if err != nil {
		t.Fatalf("ValidateTokens with malformed tokens: %v", err)
	}
	want = &customersv1.ValidateTokensResponse{Results: append(slices.Repeat([]*customersv1.TokenValidation{invalid}, len(malformed)), adaValid)}
	if diff := cmp.Diff(want, res, protocmp.Transform()); diff != "" {
		t.Errorf("ValidateTokens with malformed tokens (-want +got):\n%s", diff)
	}

	full, err := c.auth.ValidateTokens(t.Context(), &customersv1.ValidateTokensRequest{Tokens: slices.Repeat([]string{adaToken}, 128)})
	if err != nil {
		t.Fatalf("128 tokens: %v", err)
	}
	if n := len(full.GetResults()); n != 128 || !full.GetResults()[127].GetValid() {
		t.Errorf("128 tokens: %d results, the last %v; want 128 valid", n, full.GetResults()[n-1])
	}
}
