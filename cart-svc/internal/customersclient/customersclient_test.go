package customersclient_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/serve/servetest"
	"github.com/acme/shop/foundation/tlsconfig"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/cart-svc/internal/auth"
	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/customersclient"
)

// fakeCustomers answers ValidateToken by token: "good" is valid, "slow" hangs, other tokens
// map to the status code in codes below.
type fakeCustomers struct {
	customersv1.UnimplementedAuthServiceServer
}

var answers = map[string]codes.Code{
	"revoked":     codes.Unauthenticated,
	"unavailable": codes.Unavailable,
	"denied":      codes.PermissionDenied,
	"internal":    codes.Internal,
}

func (fakeCustomers) ValidateToken(ctx context.Context, r *customersv1.ValidateTokenRequest) (*customersv1.ValidateTokenResponse, error) {
	switch r.GetToken() {
	case "good":
		return &customersv1.ValidateTokenResponse{UserId: "u1", Email: "a@b.co", IsAdmin: true}, nil
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, status.Error(answers[r.GetToken()], "no")
}

// serve serves the fake on a port of the loopback interface and returns the server and its
// address.
func serve(t *testing.T) (*grpc.Server, string) {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	customersv1.RegisterAuthServiceServer(srv, fakeCustomers{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

func newClient(t *testing.T, addr string, timeout time.Duration) *customersclient.Client {
	t.Helper()
	c, err := customersclient.New(addr, tlsconfig.ClientFiles{}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestValidateMapping(t *testing.T) {
	_, addr := serve(t)
	c := newClient(t, addr, 300*time.Millisecond)
	ctx := context.Background()

	got, err := c.Validate(ctx, "good")
	if err != nil || got != (cart.Caller{UserID: "u1", IsAdmin: true}) {
		t.Errorf("good token = %+v, %v", got, err)
	}
	tests := []struct {
		token string
		want  error
	}{
		{"revoked", auth.ErrInvalidToken},
		{"unavailable", auth.ErrUnavailable},
		{"slow", auth.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			if _, err := c.Validate(ctx, tt.token); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	for _, tok := range []string{"denied", "internal"} {
		_, err := c.Validate(ctx, tok)
		if err == nil || errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s: error = %v, want an error of its own", tok, err)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestRecoversWhenCustomersReturns stops the server, checks that calls fail fast as
// unavailable, starts it again behind the same address and checks that the same client works
// again without being recreated.
func TestRecoversWhenCustomersReturns(t *testing.T) {
	srv, addr := serve(t)
	// The client's fixed address: the restarted server listens on a port of its own.
	proxy := servetest.NewProxy(t)
	proxy.Forward(addr)
	c := newClient(t, proxy.Addr, time.Second)
	ctx := context.Background()
	if _, err := c.Validate(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	proxy.Forward("")
	srv.Stop()
	start := time.Now()
	if _, err := c.Validate(ctx, "good"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("with customers down: %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("unavailable answer took %v, beyond the 1s deadline", elapsed)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("Ping succeeded with customers down")
	}
	_, addr = serve(t)
	proxy.Forward(addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Validate(ctx, "good")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client did not recover within 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
