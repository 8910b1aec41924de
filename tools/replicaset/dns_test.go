package replicaset

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func startTestNameServer(t *testing.T) *nameServer {
	t.Helper()
	ns, err := startNameServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.close(); err != nil {
			t.Errorf("close the name server: %v", err)
		}
	})
	return ns
}

// resolverOf returns a Go resolver that asks ns over network ("udp" or "tcp") and nothing else.
func resolverOf(ns *nameServer, network string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, ns.addr)
	}}
}

// TestNameServerAnswers: a held name resolves to its addresses over UDP and TCP, whatever its
// case; a name without addresses and an unknown name resolve to nothing, the unknown one as
// "not found".
func TestNameServerAnswers(t *testing.T) {
	ns := startTestNameServer(t)
	ns.set("svc.shop.test", []netip.Addr{netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("127.0.0.12")})
	ns.set("empty.shop.test", nil)
	for _, network := range []string{"udp", "tcp"} {
		r := resolverOf(ns, network)
		for _, tc := range []struct {
			name     string
			want     []string
			notFound bool
		}{
			{"svc.shop.test", []string{"127.0.0.11", "127.0.0.12"}, false},
			{"SVC.Shop.Test.", []string{"127.0.0.11", "127.0.0.12"}, false},
			{"empty.shop.test", nil, false},
			{"unknown.shop.test", nil, true},
		} {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				got, err := r.LookupHost(t.Context(), tc.name)
				var dnsErr *net.DNSError
				switch {
				case tc.notFound:
					if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
						t.Fatalf("lookup: %v, want not found", err)
					}
				case tc.want == nil:
					if err == nil && len(got) > 0 {
						t.Fatalf("got %v, want no address", got)
					}
				case err != nil:
					t.Fatalf("lookup: %v", err)
				}
				slices.Sort(got)
				if tc.want != nil {
					if diff := cmp.Diff(tc.want, got); diff != "" {
						t.Errorf("addresses (-want +got):\n%s", diff)
					}
				}
			})
		}
	}
}

// countingServer is a gRPC server on ip:port with the health service, counting the calls it
// answers.
type countingServer struct {
	addr  string
	calls atomic.Int64
}

func serveCounting(t *testing.T, ip string, port int) *countingServer {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(t.Context(), "tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	c := &countingServer{addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		c.calls.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c
}

// TestGRPCResolvesThroughTheNameServer: grpc-go's dns resolver takes the name server as the
// target's authority (dns://127.0.0.1:PORT/name:port), as cart's CART_CUSTOMERS_ADDR does,
// and round_robin spreads calls over every address the name resolves to.
func TestGRPCResolvesThroughTheNameServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("every address of 127.0.0.0/8 is loopback on Linux only")
	}
	ns := startTestNameServer(t)
	block := randomLoopbackBlock()
	first := serveCounting(t, block+"1", 0)
	_, port, _ := net.SplitHostPort(first.addr)
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	second := serveCounting(t, block+"2", p) // the same port, as on every customers replica
	ns.set("svc.shop.test", []netip.Addr{netip.MustParseAddr(block + "1"), netip.MustParseAddr(block + "2")})

	target := fmt.Sprintf("dns://%s/svc.shop.test:%d", ns.addr, p)
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Until both answered: the second address may connect a moment after the first.
	for first.calls.Load() == 0 || second.calls.Load() == 0 {
		if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatalf("health check through %s: %v (calls: %s %d, %s %d)", target, err,
				first.addr, first.calls.Load(), second.addr, second.calls.Load())
		}
	}
}
