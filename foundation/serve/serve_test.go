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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accepted := make(chan struct{}, 1)
	httpAddr, done := start(ctx, t, func(st http.ConnState) {
		if st == http.StateNew {
			accepted <- struct{}{}
		}
	})
	spare, err := new(net.Dialer).DialContext(ctx, "tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = spare.Close() }()
	<-accepted // the server holds the connection, with no request yet
	began := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("shutdown took %v with an unused connection open, want well under net/http's 5 s", took)
	}
}

// TestStopBeforeServing: a context that ends as the servers start (a signal during start-up)
// is a clean shutdown, whichever of Serve and the shutdown runs first.
func TestStopBeforeServing(t *testing.T) {
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, done := start(ctx, t, nil)
		if err := <-done; err != nil {
			t.Fatalf("Run with a context already cancelled: %v, want nil", err)
		}
	}
}

// start runs serve.Run on loopback ports until ctx ends; done receives what it returns. The
// HTTP server reports its connections' states to connState, when not nil.
func start(ctx context.Context, t *testing.T, connState func(http.ConnState)) (httpAddr string, done <-chan error) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv, err := grpcserver.New(grpcserver.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var lis [2]net.Listener
	for i := range lis {
		if lis[i], err = serve.Listen(context.Background(), "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	h := serve.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), log)
	if connState != nil {
		h.ConnState = func(_ net.Conn, st http.ConnState) { connState(st) }
	}
	ch := make(chan error, 1)
	go func() {
		ch <- serve.Run(ctx, serve.Servers{GRPC: srv, GRPCListener: lis[0], HTTP: h, HTTPListener: lis[1], ShutdownTimeout: 10 * time.Second, Logger: log})
	}()
	return lis[1].Addr().String(), ch
}
