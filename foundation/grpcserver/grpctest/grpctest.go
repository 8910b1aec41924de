// Package grpctest helps tests call the services of a grpcserver.Server the way clients do:
// over the network, through the server's whole interceptor chain, and reading back what its
// errors carry.
package grpctest

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/acme/shop/foundation/grpcserver"
)

// Serve builds a server with opts (logging nowhere unless opts has a Logger), lets register
// add the services under test, and serves them on a loopback port chosen by the system until
// the test ends. It returns the server and a client connection to it.
func Serve(t testing.TB, opts grpcserver.Options, register func(grpc.ServiceRegistrar)) (*grpcserver.Server, *grpc.ClientConn) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := grpcserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	register(srv)
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.GRPC.Serve(lis) }()
	t.Cleanup(srv.GRPC.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return srv, conn
}

// As returns the test's context, whose calls carry `authorization: Bearer token`; with an
// empty token, calls carry none.
func As(t testing.TB, token string) context.Context {
	if token == "" {
		return t.Context()
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
}

// BadRequestFields returns the fields of the google.rpc.BadRequest details of err, in order.
func BadRequestFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// Reason returns the reason of the google.rpc.ErrorInfo detail of err, or "".
func Reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// CheckError reports an error unless err has the code want and a google.rpc.BadRequest naming
// exactly wantFields (none for no such detail).
func CheckError(t testing.TB, err error, want codes.Code, wantFields ...string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("code %v, want %v (%v)", got, want, err)
	}
	if diff := cmp.Diff(wantFields, BadRequestFields(err)); diff != "" {
		t.Errorf("BadRequest fields (-want +got):\n%s", diff)
	}
}

// Resource is a message the server creates, making up its id and timestamps.
type Resource interface {
	proto.Message
	GetId() string
	GetCreatedAt() *timestamppb.Timestamp
	GetUpdatedAt() *timestamppb.Timestamp
}

// CheckCreated reports an error unless got, a resource as created, equals want but for what
// the server makes up (id, created_at, updated_at, etag), and what it made up is a UUID and
// two valid, equal timestamps.
func CheckCreated(t testing.TB, want, got Resource) {
	t.Helper()
	generated := protocmp.IgnoreFields(want, "id", "created_at", "updated_at", "etag")
	if diff := cmp.Diff(want, got, protocmp.Transform(), generated); diff != "" {
		t.Errorf("created %s (-want +got):\n%s", want.ProtoReflect().Descriptor().Name(), diff)
	}
	if err := uuid.Validate(got.GetId()); err != nil || !got.GetCreatedAt().IsValid() || !got.GetCreatedAt().AsTime().Equal(got.GetUpdatedAt().AsTime()) {
		t.Errorf("%v: want a UUID and equal, valid timestamps", got)
	}
}

// Err returns the error of a call's results, for tables of calls: Err(client.Get(ctx, req)).
func Err[T any](_ T, err error) error { return err }
