package grpcserver

import (
	"context"
	"io"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/telemetry"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

type echoUsers struct {
	customersv1.UnimplementedUserServiceServer
}

func (echoUsers) GetUser(_ context.Context, req *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	return &customersv1.GetUserResponse{User: &customersv1.User{Id: req.GetUserId()}}, nil
}

// BenchmarkUnaryCall measures one trivial unary call through the server New builds, over an
// in-memory network connection (bufconn) and in-process (Server.Local, as the REST gateway
// calls): "bare" without telemetry (the chain before observability), "tracing off" with the
// services' telemetry and no OTEL_* variable set, with no metadata (a load generator's call)
// and with an x-request-id; and over the network from a client instrumented as cart's
// customers client is, passing on the request id of the request it serves. The difference
// between them is what observability costs a call with tracing off (docs/performance.md). The
// logger is the one make bench gives the services (JSON, warn and above), so successful calls
// log nothing. Besides the time per call it reports the process's CPU per call (client, server
// and garbage collector) as cpu-ns/op (dbtest.Loop), which other work on a shared machine
// moves less.
func BenchmarkUnaryCall(b *testing.B) {
	off, err := telemetry.New(context.Background(), telemetry.Options{Name: "bench", Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	const id = "0123456789abcdef0123456789abcdef"
	withID := metadata.AppendToOutgoingContext(context.Background(), telemetry.RequestIDKey, id)
	req := &customersv1.GetUserRequest{UserId: "5f0c1c4e-5a1b-4f7e-9a43-1f3c2a6f2a10"}
	for _, transport := range []string{"network", "in-process"} {
		for _, bm := range []struct {
			name      string
			telemetry *telemetry.Telemetry
			ctx       context.Context
			client    []grpc.DialOption
		}{
			{"bare", nil, context.Background(), nil},
			{"tracing off", off, context.Background(), nil},
			{"tracing off, x-request-id", off, withID, nil},
			{"tracing off, cart's client", off, logging.WithRequestID(context.Background(), id), off.ClientOptions()},
		} {
			if transport == "in-process" && bm.client != nil {
				continue // the in-process channel has no client options
			}
			b.Run(transport+"/"+bm.name, func(b *testing.B) {
				srv, conn := serveInMemory(b, bm.telemetry, bm.client...)
				client := customersv1.NewUserServiceClient(conn)
				if transport == "in-process" {
					client = customersv1.NewUserServiceClient(srv.Local)
				}
				b.ReportAllocs()
				dbtest.Loop(b, func(int) error {
					_, err := client.GetUser(bm.ctx, req)
					return err
				})
			})
		}
	}
}

// BenchmarkObserve measures the interceptors telemetry adds to the chain (observe), with
// tracing off, around a handler that does nothing: the server's own work for a call's metrics,
// request id and trace context, without the transport and the rest of the chain that
// BenchmarkUnaryCall includes. The context is a network call's, with the metadata grpc-go gives
// a call without an x-request-id (a load generator's) and with one (cart's calls to customers).
func BenchmarkObserve(b *testing.B) {
	tel, err := telemetry.New(context.Background(), telemetry.Options{Name: "bench", Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	interceptor := chainUnary(observe(tel, nil))
	info := &grpc.UnaryServerInfo{FullMethod: "/customers.v1.UserService/GetUser"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	call := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}})
	md := metadata.Pairs(":authority", "customers:50051", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0")
	for _, bm := range []struct {
		name string
		md   metadata.MD
	}{
		{"no x-request-id", md},
		{"x-request-id", metadata.Join(md, metadata.Pairs(telemetry.RequestIDKey, "0123456789abcdef0123456789abcdef"))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			ctx := metadata.NewIncomingContext(call, bm.md)
			b.ReportAllocs()
			dbtest.Loop(b, func(int) error {
				_, err := interceptor(ctx, nil, info, handler)
				return err
			})
		})
	}
}

// serveInMemory serves echoUsers through New over a bufconn listener until the benchmark ends,
// and returns the server and a connection to it dialled with opts.
func serveInMemory(b *testing.B, tel *telemetry.Telemetry, opts ...grpc.DialOption) (*Server, *grpc.ClientConn) {
	b.Helper()
	log, err := logging.New(io.Discard, "json", "warn")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Logger: log, Telemetry: tel})
	if err != nil {
		b.Fatal(err)
	}
	customersv1.RegisterUserServiceServer(srv, echoUsers{})
	if tel != nil {
		tel.Server.InitializeMetrics(srv.GRPC)
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.GRPC.Serve(lis) }()
	b.Cleanup(srv.GRPC.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return srv, conn
}
