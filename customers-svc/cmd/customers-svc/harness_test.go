package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// testSecret signs the tokens of services under test, so that tests can forge expired ones.
const testSecret = "test-secret-test-secret-test-secret-0123"

const demoPassword = "testPass123"

// harness is one customers service started through run, on its own database, with clients for
// both transports.
type harness struct {
	t     testing.TB
	env   map[string]string
	rest  string
	users customersv1.UserServiceClient
	auth  customersv1.AuthServiceClient
	logs  *servetest.LogBuffer
}

// start runs the service on a fresh database of the dialect until the test ends. extra
// overrides environment variables.
func start(t testing.TB, dialect string, extra map[string]string) *harness {
	t.Helper()
	env := map[string]string{
		"CUSTOMERS_SQLITE_PATH": filepath.Join(t.TempDir(), "customers.db"),
		"CUSTOMERS_JWT_SECRET":  testSecret,
		"SHUTDOWN_TIMEOUT":      "5s",
		"LOG_LEVEL":             "debug",
	}
	if dialect == "postgres" {
		env["CUSTOMERS_DATABASE_URL"] = dbtest.PostgresDSN(t)
	}
	for k, v := range extra {
		env[k] = v
	}
	logs := &servetest.LogBuffer{}
	running := servetest.Start(t, spec, env, logs)
	t.Cleanup(func() {
		if err := running.Stop(10 * time.Second); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	rest := running.URL
	servetest.WaitHealthy(t, rest+"/readyz", 15*time.Second, running.Exited)
	conn, err := grpc.NewClient(running.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &harness{
		t: t, env: env, rest: rest, logs: logs,
		users: customersv1.NewUserServiceClient(conn),
		auth:  customersv1.NewAuthServiceClient(conn),
	}
}

// withToken returns a context whose gRPC calls carry `authorization: Bearer token` (none when
// token is empty).
func withToken(token string) context.Context {
	if token == "" {
		return context.Background()
	}
	return withHeader("Bearer " + token)
}

// withHeader returns a context whose gRPC calls carry the authorization value as it is (none
// when empty).
func withHeader(value string) context.Context {
	if value == "" {
		return context.Background()
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", value)
}

// restResponse is an HTTP answer with its body decoded when it is JSON.
type restResponse struct {
	Code   int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

// do sends one REST request with an optional bearer token and JSON body.
func (h *harness) do(method, path, token string, body any) restResponse {
	h.t.Helper()
	if token != "" {
		token = "Bearer " + token
	}
	return h.doHeader(method, path, token, body)
}

// doHeader sends one REST request with the authorization header value as it is (none when
// empty).
func (h *harness) doHeader(method, path, authorization string, body any) restResponse {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.rest+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	out := restResponse{Code: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
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

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
