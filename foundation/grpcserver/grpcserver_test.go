package grpcserver_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/telemetry"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

type users struct {
	customersv1.UnimplementedUserServiceServer
}

func (users) GetUser(context.Context, *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	panic("secret detail")
}

// start serves users through grpcserver.New with the given auth hook and returns a client
// connection.
func start(t *testing.T, auth grpc.UnaryServerInterceptor) (*grpcserver.Server, *grpc.ClientConn) {
	t.Helper()
	return serve(t, grpcserver.Options{Auth: auth}, users{})
}

// serve serves impl through grpcserver.New with opts and returns a client connection.
func serve(t *testing.T, opts grpcserver.Options, impl customersv1.UserServiceServer) (*grpcserver.Server, *grpc.ClientConn) {
	t.Helper()
	return grpctest.Serve(t, opts, func(r grpc.ServiceRegistrar) { customersv1.RegisterUserServiceServer(r, impl) })
}

func TestPanicBecomesGenericInternal(t *testing.T) {
	_, conn := start(t, nil)
	_, err := customersv1.NewUserServiceClient(conn).GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "me"})
	st := status.Convert(err)
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("got %v %q, want Internal with a generic message", st.Code(), st.Message())
	}
}

func TestValidationFieldViolations(t *testing.T) {
	_, conn := start(t, nil)
	_, err := customersv1.NewUserServiceClient(conn).GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "not-a-uuid"})
	grpctest.CheckError(t, err, codes.InvalidArgument, "user_id")
}

func TestAuthRunsBeforeValidation(t *testing.T) {
	deny := func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		return nil, status.Error(codes.Unauthenticated, "no token")
	}
	_, conn := start(t, deny)
	_, err := customersv1.NewUserServiceClient(conn).GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "not-a-uuid"})
	if got := status.Code(err); got != codes.Unauthenticated {
		t.Errorf("code %v, want Unauthenticated: an anonymous caller learns nothing from validation", got)
	}
}

func TestHealthAndReflection(t *testing.T) {
	srv, conn := start(t, nil)
	hc := healthpb.NewHealthClient(conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		res, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check %q: %v", service, err)
		}
		return res.GetStatus()
	}
	srv.MarkServing()
	if got := check("customers.v1.UserService"); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("UserService health %v, want SERVING", got)
	}
	srv.MarkNotServing()
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("server health after MarkNotServing %v, want NOT_SERVING", got)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"customers.v1.UserService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestMessageSizeLimit(t *testing.T) {
	_, conn := start(t, nil)
	big := make([]byte, grpcserver.MaxMessageSize+1)
	for i := range big {
		big[i] = 'a'
	}
	_, err := customersv1.NewUserServiceClient(conn).CreateUser(t.Context(), &customersv1.CreateUserRequest{Email: string(big)})
	if got := status.Code(err); got != codes.ResourceExhausted {
		t.Errorf("code %v for an oversized message, want ResourceExhausted", got)
	}
}

// TestInProcessRunsTheSameChain calls through Server.Local, as the REST gateway does: the
// recovery interceptor turns the handler's panic into the same generic error as over the
// network, and the auth hook sees an in-process call whose client is the HTTP connection's
// address from the gateway's context, while forwarding metadata moves no one anywhere.
func TestInProcessRunsTheSameChain(t *testing.T) {
	type seen struct {
		inProcess bool
		addr      string
	}
	calls := make(chan seen, 4)
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		calls <- seen{grpcserver.InProcess(ctx), grpcserver.ClientAddr(ctx)}
		return handler(ctx, req)
	}
	srv, conn := start(t, auth)
	forged := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", "203.0.113.9, 198.51.100.1")
	fromHTTP := grpcserver.WithRemoteAddr(forged, "192.0.2.7:51234")
	for _, tc := range []struct {
		name string
		conn grpc.ClientConnInterface
		ctx  context.Context
		want seen
	}{
		{"network, forged forwarding", conn, forged, seen{false, "127.0.0.1"}},
		{"in-process from an HTTP connection, forged forwarding", srv.Local, fromHTTP, seen{true, "192.0.2.7"}},
		{"in-process without an HTTP connection", srv.Local, forged, seen{true, "unknown"}},
	} {
		_, err := customersv1.NewUserServiceClient(tc.conn).GetUser(tc.ctx, &customersv1.GetUserRequest{UserId: "me"})
		if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
			t.Errorf("%s: GetUser = %v, want the generic Internal error", tc.name, err)
		}
		if got := <-calls; got != tc.want {
			t.Errorf("%s: auth hook saw %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestRequestIDListsOnlyOnInternalRPCs: a call of an internal RPC (Options.Internal) may carry
// the list of the ids of the requests it serves, and its log line carries them all; any other
// call keeps the first id of a list, so that no client fills every log line of its calls with
// ids of its choosing.
func TestRequestIDListsOnlyOnInternalRPCs(t *testing.T) {
	tel, err := telemetry.New(t.Context(), telemetry.Options{Name: "test", Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	logs := &servicetest.LogBuffer{}
	log, err := logging.New(logs, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	check := "/" + healthpb.Health_ServiceDesc.ServiceName + "/Check"
	srv, conn := serve(t, grpcserver.Options{Logger: log, Telemetry: tel, Internal: func(method string) bool { return method == check }}, users{})
	srv.MarkServing()
	const list = "first-id,second-id,third-id"
	ctx := metadata.AppendToOutgoingContext(t.Context(), telemetry.RequestIDKey, list)
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	_, _ = customersv1.NewUserServiceClient(conn).ListUsers(ctx, &customersv1.ListUsersRequest{})
	lines := map[string]string{}
	for line := range strings.Lines(logs.String()) {
		for _, method := range []string{check, "/customers.v1.UserService/ListUsers"} {
			if strings.Contains(line, "grpc.method="+method+" ") {
				lines[method] = line
			}
		}
	}
	if line := lines[check]; !strings.Contains(line, "request_id="+list) {
		t.Errorf("the internal RPC's line %q, want request_id=%s", line, list)
	}
	if line := lines["/customers.v1.UserService/ListUsers"]; !strings.Contains(line, "request_id=first-id") || strings.Contains(line, "second-id") {
		t.Errorf("another RPC's line %q, want request_id=first-id alone", line)
	}
}
