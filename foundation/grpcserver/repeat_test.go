package grpcserver_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// flaky fails its first call of each method with errDown, the database going away under it,
// and answers the calls after it.
type flaky struct {
	customersv1.UnimplementedUserServiceServer
	gets, updates atomic.Int32
}

func (f *flaky) GetUser(context.Context, *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	if f.gets.Add(1) == 1 {
		return nil, errDown
	}
	return &customersv1.GetUserResponse{}, nil
}

func (f *flaky) UpdateUser(context.Context, *customersv1.UpdateUserRequest) (*customersv1.UpdateUserResponse, error) {
	if f.updates.Add(1) == 1 {
		return nil, errDown
	}
	return &customersv1.UpdateUserResponse{}, nil
}

// A read that meets an unavailable database runs once more and succeeds; a write without an
// Idempotency-Key does not (it may have committed), and is UNAVAILABLE with Retry-After.
func TestUnavailableReadsRepeatOnce(t *testing.T) {
	f := &flaky{}
	_, conn := serve(t, grpcserver.Options{Errors: domainErrors, Unavailable: isDown}, f)
	users := customersv1.NewUserServiceClient(conn)

	if _, err := users.GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "me"}); err != nil {
		t.Errorf("GetUser, repeated after the database failed once: %v", err)
	}
	if got := f.gets.Load(); got != 2 {
		t.Errorf("GetUser handler ran %d times, want 2", got)
	}

	var header metadata.MD
	_, err := users.UpdateUser(t.Context(), &customersv1.UpdateUserRequest{UserId: "me"}, grpc.Header(&header))
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("UpdateUser: code %v, want Unavailable", got)
	}
	if got := f.updates.Load(); got != 1 {
		t.Errorf("UpdateUser handler ran %d times, want 1 (a write is not repeated)", got)
	}
	if got := header.Get(grpcserver.RetryAfterKey); !cmp.Equal(got, []string{"2"}) {
		t.Errorf("retry-after %v, want [2]", got)
	}
}
