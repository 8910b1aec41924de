package main

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/grpcserver"
)

// TestManyWatchStreamsDoNotStopCart: many Health/Watch streams held open from one address,
// cart's own (through the same proxy, so customers sees one client), over many connections
// until customers refuses more, do not stop cart validating tokens. cart cannot pick a
// customers replica whose health it cannot watch, and its watch is its connection's first
// stream, which customers always admits; when customers counted it against the address's
// limit like any other, the flood made every authenticated cart request a 503.
func TestManyWatchStreamsDoNotStopCart(t *testing.T) {
	c := startCustomers(t, "sqlite", nil)
	_, _, token := c.shopper()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	refused := 0
	for range 2 * grpcserver.DefaultStreamsPerClient / grpcserver.DefaultStreamsPerConn {
		conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		hc := healthpb.NewHealthClient(conn)
		for range grpcserver.DefaultStreamsPerConn {
			stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) == codes.ResourceExhausted {
				refused++
				break
			}
			if err != nil {
				t.Fatalf("watch: %v", err)
			}
		}
	}
	if refused == 0 {
		t.Fatal("customers admitted every stream: the flood did not reach the address's limit")
	}

	h := start(t, "sqlite", c.grpc, nil)
	if res := h.do(http.MethodGet, "/api/v1/carts/me", token, nil); res.Code != http.StatusOK {
		t.Errorf("cart during the flood = %d %s, want 200", res.Code, res.Raw)
	}
}
