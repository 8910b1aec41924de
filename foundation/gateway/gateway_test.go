package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/gateway"
	"github.com/acme/shop/foundation/grpcserver"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

const (
	panicID     = "00000000-0000-0000-0000-00000000dead"
	throttledID = "00000000-0000-0000-0000-000000000429"
	staleID     = "00000000-0000-0000-0000-000000000412"
	reusedID    = "00000000-0000-0000-0000-000000000422"
)

// users is a fake UserService that echoes requests back, to exercise the gateway's plumbing.
type users struct {
	customersv1.UnimplementedUserServiceServer
}

func (users) CreateUser(_ context.Context, r *customersv1.CreateUserRequest) (*customersv1.CreateUserResponse, error) {
	return &customersv1.CreateUserResponse{User: &customersv1.User{Id: "u1", Email: r.GetEmail()}}, nil
}

func (users) ListUsers(context.Context, *customersv1.ListUsersRequest) (*customersv1.ListUsersResponse, error) {
	return &customersv1.ListUsersResponse{}, nil
}

func (users) GetUser(_ context.Context, r *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	if r.GetUserId() == panicID {
		panic("boom with a secret detail")
	}
	return &customersv1.GetUserResponse{User: &customersv1.User{Id: r.GetUserId()}}, nil
}

func (users) UpdateUser(ctx context.Context, r *customersv1.UpdateUserRequest) (*customersv1.UpdateUserResponse, error) {
	switch r.GetUserId() {
	case staleID:
		return nil, grpcserver.WithReason(codes.Aborted, grpcserver.ReasonETagMismatch, "the user changed since it was read")
	case reusedID:
		return nil, grpcserver.WithReason(codes.InvalidArgument, grpcserver.ReasonIdempotencyKeyReused, "key used for another request")
	}
	if r.GetUserId() == throttledID {
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", "30"))
		return nil, status.Error(codes.ResourceExhausted, "slow down")
	}
	return &customersv1.UpdateUserResponse{User: &customersv1.User{Id: r.GetUserId(), FirstName: r.GetFirstName()}}, nil
}

func (users) DeleteUser(context.Context, *customersv1.DeleteUserRequest) (*customersv1.DeleteUserResponse, error) {
	return &customersv1.DeleteUserResponse{}, nil
}

var errNotReady = errors.New("database down")

// newGateway serves the fake over a real HTTP transport, through the real interceptor chain
// (the in-process channel the services use), and returns the REST base URL. ready is what
// /readyz reports.
func newGateway(t *testing.T, ready *error) string {
	t.Helper()
	return serveFake(t, gateway.Config{
		OpenAPI: []byte(`{"openapi":"3.1.0"}`),
		Ready:   func(context.Context) error { return *ready },
	})
}

// serveFake serves the fake users service with cfg, whose connection, registration and
// descriptors it fills in, and returns the REST base URL.
func serveFake(t *testing.T, cfg gateway.Config) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv, err := grpcserver.New(grpcserver.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	customersv1.RegisterUserServiceServer(srv, users{})
	cfg.Title, cfg.Conn, cfg.Logger = "test", srv.Local, log
	cfg.Register = []gateway.RegisterFunc{gateway.Service(customersv1.RegisterUserServiceHandlerClient, customersv1.NewUserServiceClient)}
	cfg.Services = []protoreflect.ServiceDescriptor{customersv1.File_customers_v1_user_proto.Services().ByName("UserService")}
	h, err := gateway.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: b}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, b)
	}
	return m
}

const uuid = "0b6f3c1e-8a53-4a0e-9a59-3c2b1f0d4e21"

func TestStatusCodes(t *testing.T) {
	var ready error
	base := newGateway(t, &ready)
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"create is 201", http.MethodPost, "/api/v1/users", `{"email":"a@example.com","password":"12345678"}`, http.StatusCreated},
		{"get is 200", http.MethodGet, "/api/v1/users/" + uuid, "", http.StatusOK},
		{"trailing slash is accepted", http.MethodGet, "/api/v1/users/" + uuid + "/", "", http.StatusOK},
		{"list with trailing slash", http.MethodGet, "/api/v1/users/", "", http.StatusOK},
		{"delete is 204", http.MethodDelete, "/api/v1/users/" + uuid, "", http.StatusNoContent},
		{"unimplemented is 501", http.MethodPost, "/api/v1/users/" + uuid + "/password", `{"new_password":"12345678"}`, http.StatusNotImplemented},
		{"unknown path is 404", http.MethodGet, "/api/v1/nothing", "", http.StatusNotFound},
		{"malformed JSON is 400", http.MethodPost, "/api/v1/users", `{"email":`, http.StatusBadRequest},
		{"unknown field is 400", http.MethodPost, "/api/v1/users", `{"email":"a@example.com","password":"12345678","id":"x"}`, http.StatusBadRequest},
		{"wrong type is 400", http.MethodPost, "/api/v1/users", `{"email":42,"password":"12345678"}`, http.StatusBadRequest},
		{"invalid UTF-8 is 400", http.MethodPost, "/api/v1/users", "{\"email\":\"\xff\",\"password\":\"12345678\"}", http.StatusBadRequest},
		{"panic is 500", http.MethodGet, "/api/v1/users/" + panicID, "", http.StatusInternalServerError},
		{"invalid UTF-8 in the query is 400", http.MethodGet, "/api/v1/users?search=%80", "", http.StatusBadRequest},
		{"invalid UTF-8 in the path is 400", http.MethodGet, "/api/v1/users/%ff", "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			res := do(t, tt.method, base+tt.path, body)
			if res.code != tt.want {
				t.Errorf("%s %s = %d, want %d; body %s", tt.method, tt.path, res.code, tt.want, res.body)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	var ready error
	base := newGateway(t, &ready)

	t.Run("resource is unwrapped, proto names, unpopulated fields emitted", func(t *testing.T) {
		res := do(t, http.MethodPost, base+"/api/v1/users", strings.NewReader(`{"email":"a@example.com","password":"12345678"}`))
		got := decode(t, res.body)
		want := map[string]any{
			"id": "u1", "email": "a@example.com", "first_name": "", "last_name": "", "etag": "",
			"is_admin": false, "created_at": nil, "updated_at": nil,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
	})
	t.Run("empty list is emitted", func(t *testing.T) {
		got := decode(t, do(t, http.MethodGet, base+"/api/v1/users", nil).body)
		want := map[string]any{"users": []any{}, "next_page_token": ""}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
	})
	t.Run("204 has no body and no content type", func(t *testing.T) {
		res := do(t, http.MethodDelete, base+"/api/v1/users/"+uuid, nil)
		if len(res.body) != 0 || res.header.Get("Content-Type") != "" {
			t.Errorf("204 body %q, content type %q; want both empty", res.body, res.header.Get("Content-Type"))
		}
	})
	t.Run("validation names each bad field once", func(t *testing.T) {
		res := do(t, http.MethodPost, base+"/api/v1/users", strings.NewReader(`{"email":"nope","password":"short","first_name":"`+strings.Repeat("x", 101)+`"}`))
		if res.code != http.StatusBadRequest {
			t.Fatalf("code %d, want 400", res.code)
		}
		var st struct {
			Code    int
			Details []struct {
				Type            string                   `json:"@type"`
				FieldViolations []struct{ Field string } `json:"field_violations"`
			}
		}
		if err := json.Unmarshal(res.body, &st); err != nil {
			t.Fatal(err)
		}
		if st.Code != int(codes.InvalidArgument) || len(st.Details) != 1 || st.Details[0].Type != "type.googleapis.com/google.rpc.BadRequest" {
			t.Fatalf("error body %s: want code 3 with one google.rpc.BadRequest detail", res.body)
		}
		var fields []string
		for _, v := range st.Details[0].FieldViolations {
			fields = append(fields, v.Field)
		}
		if diff := cmp.Diff([]string{"email", "password", "first_name"}, fields); diff != "" {
			t.Errorf("field violations (-want +got):\n%s", diff)
		}
	})
	t.Run("panic answer is generic", func(t *testing.T) {
		res := do(t, http.MethodGet, base+"/api/v1/users/"+panicID, nil)
		if bytes.Contains(res.body, []byte("secret")) || bytes.Contains(res.body, []byte("boom")) {
			t.Errorf("500 body leaks the panic: %s", res.body)
		}
	})
	t.Run("throttled call forwards Retry-After", func(t *testing.T) {
		res := do(t, http.MethodPatch, base+"/api/v1/users/"+throttledID, strings.NewReader(`{}`))
		if res.code != http.StatusTooManyRequests || res.header.Get("Retry-After") != "30" {
			t.Errorf("got %d with Retry-After %q, want 429 with 30", res.code, res.header.Get("Retry-After"))
		}
	})
	t.Run("PATCH applies present fields", func(t *testing.T) {
		got := decode(t, do(t, http.MethodPatch, base+"/api/v1/users/"+uuid, strings.NewReader(`{"first_name":"Ada"}`)).body)
		if got["first_name"] != "Ada" {
			t.Errorf("first_name = %v, want Ada", got["first_name"])
		}
	})
}

func TestBodyLimit(t *testing.T) {
	var ready error
	base := newGateway(t, &ready)
	big := `{"email":"a@example.com","password":"12345678","first_name":"` + strings.Repeat("x", gateway.MaxBodyBytes) + `"}`

	t.Run("declared length", func(t *testing.T) {
		res := do(t, http.MethodPost, base+"/api/v1/users", strings.NewReader(big))
		if res.code != http.StatusRequestEntityTooLarge {
			t.Errorf("code %d, want 413", res.code)
		}
		if decode(t, res.body)["code"] != float64(codes.InvalidArgument) {
			t.Errorf("413 body %s is not a status body", res.body)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// io.MultiReader hides the length, so the client sends the body chunked.
		res := do(t, http.MethodPost, base+"/api/v1/users", io.MultiReader(strings.NewReader(big)))
		if res.code != http.StatusRequestEntityTooLarge {
			t.Errorf("code %d, want 413", res.code)
		}
	})
	t.Run("just under the limit is decoded", func(t *testing.T) {
		body := `{"email":"a@example.com","password":"12345678","last_name":"` + strings.Repeat(" ", gateway.MaxBodyBytes-100) + `"}`
		res := do(t, http.MethodPost, base+"/api/v1/users", io.MultiReader(strings.NewReader(body)))
		// The body is read and decoded; the name is then too long for validation.
		if res.code != http.StatusBadRequest {
			t.Errorf("code %d, want 400 from validation; body %s", res.code, res.body)
		}
	})
}

// TestReadyzDependencies: a dependency that is down is reported in the body and logged once
// when its state changes, and never makes the service not ready.
func TestReadyzDependencies(t *testing.T) {
	var logs bytes.Buffer
	var down atomic.Bool
	h, err := gateway.New(context.Background(), gateway.Config{
		Title: "test", Conn: nil, OpenAPI: []byte(`{}`),
		Ready: func(context.Context) error { return nil },
		Dependencies: map[string]func(context.Context) error{
			"customers": func(context.Context) error {
				if down.Load() {
					return errors.New("connection refused")
				}
				return nil
			},
		},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	check := func(want string) {
		t.Helper()
		res := do(t, http.MethodGet, hs.URL+gateway.ReadyzPath, nil)
		var body struct {
			Status       string
			Dependencies map[string]string
		}
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatalf("readyz body %s: %v", res.body, err)
		}
		if res.code != http.StatusOK || body.Status != "ready" || body.Dependencies["customers"] != want {
			t.Errorf("readyz = %d %s, want 200, ready, customers %s", res.code, res.body, want)
		}
	}
	check("available")
	down.Store(true)
	check("unavailable")
	check("unavailable")
	down.Store(false)
	check("available")
	got := logs.String()
	if n := strings.Count(got, "dependency unavailable"); n != 1 {
		t.Errorf("logged %d times that customers is unavailable, want once (on the change):\n%s", n, got)
	}
	if n := strings.Count(got, "dependency available"); n != 1 {
		t.Errorf("logged %d times that customers is available, want once (on recovery):\n%s", n, got)
	}
}

func TestHealthAndDocs(t *testing.T) {
	var ready error
	base := newGateway(t, &ready)
	if res := do(t, http.MethodGet, base+gateway.HealthzPath, nil); res.code != http.StatusOK {
		t.Errorf("healthz = %d, want 200", res.code)
	}
	if res := do(t, http.MethodGet, base+gateway.ReadyzPath, nil); res.code != http.StatusOK {
		t.Errorf("readyz = %d, want 200", res.code)
	}
	ready = errNotReady
	if res := do(t, http.MethodGet, base+gateway.ReadyzPath, nil); res.code != http.StatusServiceUnavailable || bytes.Contains(res.body, []byte("database down")) {
		t.Errorf("readyz when not ready = %d %s, want 503 without the cause", res.code, res.body)
	}
	res := do(t, http.MethodGet, base+gateway.DocsPath, nil)
	if res.code != http.StatusOK || !bytes.Contains(res.body, []byte("swagger")) {
		t.Errorf("docs = %d, want 200 with Swagger UI", res.code)
	}
	res = do(t, http.MethodGet, base+gateway.SpecPath, nil)
	if res.code != http.StatusOK || string(res.body) != `{"openapi":"3.1.0"}` {
		t.Errorf("spec = %d %q, want the configured document", res.code, res.body)
	}
}

func TestReasonStatuses(t *testing.T) {
	var ready error
	base := newGateway(t, &ready)
	for id, want := range map[string]int{staleID: http.StatusPreconditionFailed, reusedID: http.StatusUnprocessableEntity} {
		res := do(t, http.MethodPatch, base+"/api/v1/users/"+id, strings.NewReader(`{"first_name":"x"}`))
		if res.code != want || !strings.Contains(string(res.body), "ErrorInfo") {
			t.Errorf("PATCH %s: %d %s, want %d with the ErrorInfo detail", id, res.code, res.body, want)
		}
	}
}
