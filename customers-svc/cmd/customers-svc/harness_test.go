package main

import (
	"context"
	"log/slog"
	"maps"
	"testing"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/service/servicetest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/customers-svc/internal/migrations"
)

// testSecret signs the tokens of services under test, so that tests can forge expired ones.
const testSecret = "test-secret-test-secret-test-secret-0123"

const demoPassword = "testPass123"

// harness is one customers service started through run, on its own database, with clients for
// both transports.
type harness struct {
	t     testing.TB
	rest  string
	users customersv1.UserServiceClient
	auth  customersv1.AuthServiceClient
	logs  *servicetest.LogBuffer
}

// start runs the service on a fresh database of the dialect until the test ends, and waits
// until it is ready. extra overrides environment variables.
func start(t testing.TB, dialect string, extra map[string]string) *harness {
	t.Helper()
	// Tests register many users from one address; the registration limit has tests of its own.
	env := map[string]string{"CUSTOMERS_JWT_SECRET": testSecret, "CUSTOMERS_REGISTER_MAX_PER_ADDR": "100000"}
	maps.Copy(env, extra)
	s := servicetest.StartOn(t, spec, dialect, env)
	s.WaitReady(t)
	return &harness{
		t: t, rest: s.URL, logs: s.Logs,
		users: customersv1.NewUserServiceClient(s.Conn),
		auth:  customersv1.NewAuthServiceClient(s.Conn),
	}
}

// withToken returns a context whose gRPC calls carry `authorization: Bearer token` (none when
// token is empty).
func withToken(token string) context.Context {
	return servicetest.WithAuthorization(servicetest.Bearer(token))
}

// do sends one REST request with an optional bearer token and JSON body.
func (h *harness) do(method, path, token string, body any) servicetest.Response {
	h.t.Helper()
	return servicetest.Do(h.t, method, h.rest+path, servicetest.Bearer(token), body)
}

// login logs in over gRPC and returns the access token.
func (h *harness) login(email, password string) string {
	h.t.Helper()
	res, err := h.auth.Login(context.Background(), &customersv1.LoginRequest{Email: email, Password: password})
	if err != nil {
		h.t.Fatalf("login %s: %v", email, err)
	}
	return res.GetAccessToken()
}

// register creates a user over gRPC and returns it.
func (h *harness) register(email, password string) *customersv1.User {
	h.t.Helper()
	res, err := h.users.CreateUser(context.Background(), &customersv1.CreateUserRequest{Email: email, Password: password})
	if err != nil {
		h.t.Fatalf("register %s: %v", email, err)
	}
	return res.GetUser()
}

// checkMigratedOnce opens the database a service ran on and checks that every migration, demo
// data included, was applied exactly once: each is recorded once, and the 4 demo users exist
// once. when says after what ("after migrate twice").
func checkMigratedOnce(t *testing.T, cfg database.Config, when string) {
	t.Helper()
	db, err := database.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = database.Close(db) }()
	var applied, users int64
	if err := db.Table("migrations").Count(&applied).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Table("users").Count(&users).Error; err != nil {
		t.Fatal(err)
	}
	if want := int64(len(migrations.All(true))); applied != want || users != 4 {
		t.Errorf("%s: %d migrations applied and %d users, want %d and the 4 demo users", when, applied, users, want)
	}
}
