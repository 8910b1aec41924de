package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/grpcserver/grpctest"
	"github.com/acme/shop/foundation/permission"
	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/validation"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// failing answers GetUser with err.
type failing struct {
	customersv1.UnimplementedUserServiceServer
	err error
}

func (f failing) GetUser(context.Context, *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	return nil, f.err
}

var (
	errMissing   = errors.New("thing not found")
	errThrottled = errors.New("slow down")
	errDown      = errors.New("database down: secret detail")
)

// domainErrors is a service's own map, as Options.Errors.
func domainErrors(ctx context.Context, err error) *status.Status {
	switch {
	case errors.Is(err, errMissing):
		return status.New(codes.NotFound, "thing not found")
	case errors.Is(err, errThrottled):
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", "7"))
		return status.New(codes.ResourceExhausted, "slow down")
	}
	return nil
}

func isDown(err error) bool { return errors.Is(err, errDown) }

func TestErrorsBecomeStatuses(t *testing.T) {
	two := &validation.Error{Violations: []validation.Violation{{Field: "email", Description: "bad"}, {Field: "last_name", Description: "too long"}}}
	tests := []struct {
		name        string
		err         error
		errors      func(context.Context, error) *status.Status
		unavailable func(error) bool
		want        codes.Code
		wantFields  []string
		wantLog     string // a level and text the server log must show
	}{
		{"validation error", validation.Fail("email", "must be a valid email address"), nil, nil, codes.InvalidArgument, []string{"email"}, ""},
		{"wrapped validation error, two fields", fmt.Errorf("register: %w", two), nil, nil, codes.InvalidArgument, []string{"email", "last_name"}, ""},
		{"permission denied", fmt.Errorf("get: %w", permission.ErrDenied), nil, nil, codes.PermissionDenied, nil, ""},
		{"domain error from the service's map", fmt.Errorf("get: %w", errMissing), domainErrors, nil, codes.NotFound, nil, ""},
		{"status error unchanged", status.Error(codes.Unauthenticated, "no token"), domainErrors, isDown, codes.Unauthenticated, nil, ""},
		// The call's own context is live: a deadline or cancellation of the server's own (a
		// batched lookup's timeout) is a dependency that did not answer in time.
		{"server's own deadline", fmt.Errorf("lookup: %w", context.DeadlineExceeded), domainErrors, nil, codes.Unavailable, nil, "level=WARN msg=\"dependency unavailable\" grpc.method=/customers.v1.UserService/GetUser"},
		{"server's own cancellation", fmt.Errorf("query: %w", context.Canceled), domainErrors, isDown, codes.Unavailable, nil, "level=WARN msg=\"dependency unavailable\""},
		{"unavailable dependency", fmt.Errorf("query: %w", errDown), domainErrors, isDown, codes.Unavailable, nil, "level=WARN msg=\"dependency unavailable\" grpc.method=/customers.v1.UserService/GetUser"},
		{"unavailable without a classifier", errDown, domainErrors, nil, codes.Internal, nil, "level=ERROR msg=\"internal error\" grpc.method=/customers.v1.UserService/GetUser"},
		{"unknown", errors.New("secret detail"), domainErrors, isDown, codes.Internal, nil, "level=ERROR msg=\"internal error\" grpc.method=/customers.v1.UserService/GetUser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := grpcserver.Options{
				Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
				Errors:      tt.errors,
				Unavailable: tt.unavailable,
			}
			_, conn := serve(t, opts, failing{err: tt.err})
			_, err := customersv1.NewUserServiceClient(conn).GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "me"})
			grpctest.CheckError(t, err, tt.want, tt.wantFields...)
			if strings.Contains(status.Convert(err).Message(), "secret") {
				t.Errorf("the answer leaks the cause: %v", err)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// TestErrorMapSetsHeaders checks that the service's map runs with the call's context, so that
// it can set response headers (a throttled call's Retry-After), over the network and
// in-process.
func TestErrorMapSetsHeaders(t *testing.T) {
	srv, conn := serve(t, grpcserver.Options{Errors: domainErrors}, failing{err: errThrottled})
	for _, tc := range []struct {
		name string
		conn grpc.ClientConnInterface
	}{{"network", conn}, {"in-process", srv.Local}} {
		var header metadata.MD
		_, err := customersv1.NewUserServiceClient(tc.conn).GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "me"}, grpc.Header(&header))
		if got := status.Code(err); got != codes.ResourceExhausted {
			t.Errorf("%s: code %v, want ResourceExhausted", tc.name, got)
		}
		if got := header.Get("retry-after"); !cmp.Equal(got, []string{"7"}) {
			t.Errorf("%s: retry-after %v, want [7]", tc.name, got)
		}
	}
}

// TestAuthErrorsAreTranslated checks that the auth hook runs inside the translation: it may
// return domain errors too.
func TestAuthErrorsAreTranslated(t *testing.T) {
	auth := func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		return nil, fmt.Errorf("authenticate: %w", errMissing)
	}
	_, conn := serve(t, grpcserver.Options{Auth: auth, Errors: domainErrors}, failing{})
	_, err := customersv1.NewUserServiceClient(conn).GetUser(t.Context(), &customersv1.GetUserRequest{UserId: "me"})
	if got := status.Code(err); got != codes.NotFound {
		t.Errorf("code %v, want NotFound from the service's map", got)
	}
}

// hangingUp answers GetUser, once its call's context has ended, with what SQLite's driver
// returns for a statement interrupted by a cancelled context: an error that is not a context
// error. started is closed when the call is in the handler.
type hangingUp struct {
	customersv1.UnimplementedUserServiceServer
	started chan struct{}
}

func (h hangingUp) GetUser(ctx context.Context, _ *customersv1.GetUserRequest) (*customersv1.GetUserResponse, error) {
	close(h.started)
	<-ctx.Done()
	return nil, errors.New("interrupted (9)")
}

// TestCallerGaveUp checks that whatever a handler returns once its call's context has ended
// keeps the code of the caller's giving up, logged below error level: a client that hangs up
// or runs out of time is not a server error, whatever error its giving up caused. Over the
// network, a client whose deadline passes also cancels the stream, and the server may see
// either first: the deadline is checked in-process (the REST gateway's way in), where the
// handler's context is the client's.
func TestCallerGaveUp(t *testing.T) {
	tests := []struct {
		name      string
		inProcess bool
		timeout   time.Duration // 0: the client cancels once the call is in the handler
		want      string        // the server's line about the call
	}{
		{"hung up", false, 0, "level=INFO msg=\"finished call\" grpc.method=/customers.v1.UserService/GetUser grpc.code=Canceled"},
		{"hung up, in-process", true, 0, "level=INFO msg=\"finished call\" grpc.method=/customers.v1.UserService/GetUser grpc.code=Canceled"},
		{"out of time, in-process", true, 50 * time.Millisecond, "level=WARN msg=\"finished call\" grpc.method=/customers.v1.UserService/GetUser grpc.code=DeadlineExceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &servicetest.LogBuffer{}
			h := hangingUp{started: make(chan struct{})}
			srv, conn := serve(t, grpcserver.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Errors: domainErrors, Unavailable: isDown}, h)
			var cc grpc.ClientConnInterface = conn
			if tt.inProcess {
				cc = srv.Local
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.timeout > 0 {
				ctx, cancel = context.WithTimeout(t.Context(), tt.timeout)
				defer cancel()
			} else {
				go func() {
					<-h.started
					cancel()
				}()
			}
			_, _ = customersv1.NewUserServiceClient(cc).GetUser(ctx, &customersv1.GetUserRequest{UserId: "me"})
			// The client's call may return before the server logs its line.
			poll.Until(t, func() error {
				if !strings.Contains(logs.String(), "finished call") {
					return errors.New("no line about the call in the log")
				}
				return nil
			})
			if !strings.Contains(logs.String(), tt.want) {
				t.Errorf("log lacks %q:\n%s", tt.want, logs.String())
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a caller giving up logged an error:\n%s", logs.String())
			}
		})
	}
}
