package serve_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/serve"
)

// TestShutdownDoesNotWaitForUnusedConnections opens a connection that never sends a request,
// as HTTP clients do when they dial a spare: shutdown must not wait for it (net/http alone
// waits 5 s).
func TestShutdownDoesNotWaitForUnusedConnections(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	srv, err := grpcserver.New(grpcserver.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	grpcLis, err := serve.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLis, err := serve.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := serve.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), log)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, serve.Servers{GRPC: srv, GRPCListener: grpcLis, HTTP: h, HTTPListener: httpLis, ShutdownTimeout: 10 * time.Second, Logger: log})
	}()
	spare, err := new(net.Dialer).DialContext(ctx, "tcp", httpLis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = spare.Close() }()
	time.Sleep(100 * time.Millisecond)
	began := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("shutdown took %v with an unused connection open, want well under net/http's 5 s", took)
	}
}
