// Package serve runs a service's gRPC and HTTP servers until the context ends, then shuts them
// down gracefully: health checks turn NOT_SERVING, the HTTP server drains, the gRPC server
// finishes in-flight calls, all within a timeout.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/acme/shop/foundation/grpcserver"
)

// Servers are what Run serves.
type Servers struct {
	GRPC         *grpcserver.Server
	GRPCListener net.Listener
	HTTP         *http.Server
	HTTPListener net.Listener
	// ShutdownTimeout bounds the graceful shutdown; calls still running then are cut off.
	ShutdownTimeout time.Duration
	// DrainDelay is how long the servers keep accepting requests after health checks turn
	// NOT_SERVING, so that load balancers stop routing here before the listeners close.
	DrainDelay time.Duration
	Logger     *slog.Logger
}

// Run serves until ctx is cancelled or a server fails, then shuts both down. It returns nil
// after a clean shutdown triggered by ctx.
func Run(ctx context.Context, s Servers) error {
	idle := trackUnused(s.HTTP)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// ErrServerStopped: the shutdown below ran before Serve started (a context cancelled
		// at once); only Run stops the server, so that is a clean stop too.
		if err := s.GRPC.GRPC.Serve(s.GRPCListener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := s.HTTP.Serve(s.HTTPListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	s.GRPC.MarkServing()
	s.Logger.Info("serving", "grpc", s.GRPCListener.Addr().String(), "http", s.HTTPListener.Addr().String())

	g.Go(func() error {
		<-gctx.Done()
		s.Logger.Info("shutting down", "drain_delay", s.DrainDelay, "timeout", s.ShutdownTimeout)
		s.GRPC.MarkNotServing()
		time.Sleep(s.DrainDelay)

		sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
		defer cancel()
		// HTTP first, then gRPC: each drains its own in-flight calls (REST requests call the
		// services in-process, not through the gRPC server), and stopping HTTP first keeps
		// the order the two ports were announced in. net/http waits up to 5 s for connections
		// that never sent a request (clients dial spare connections); close them sooner.
		stopClosing := make(chan struct{})
		go idle.closeWhile(stopClosing)
		herr := s.HTTP.Shutdown(sctx)
		close(stopClosing)
		stopped := make(chan struct{})
		go func() {
			s.GRPC.GRPC.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-sctx.Done():
			s.GRPC.GRPC.Stop()
			<-stopped
		}
		if herr != nil {
			_ = s.HTTP.Close()
			return fmt.Errorf("HTTP shutdown: %w", herr)
		}
		return nil
	})
	return g.Wait()
}

// Listen opens a TCP listener on addr (":8081", "127.0.0.1:0").
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lis, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return lis, nil
}

// HTTPServer returns an http.Server for h with timeouts that keep slow or idle clients from
// holding connections forever.
func HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// The client's address, for the login throttle and the call log of in-process calls
		// (grpcserver.ClientAddr), once per connection rather than per request.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return grpcserver.WithRemoteAddr(ctx, c.RemoteAddr().String())
		},
	}
}

// unused tracks the HTTP connections that have not sent a request yet, with when they were
// accepted.
type unused struct {
	mu    sync.Mutex
	conns map[net.Conn]time.Time
}

// unusedAfter is how long a connection may stay without a request before shutdown treats it as
// a spare that will never send one. net/http waits 5 s. Not less than a few hundred
// milliseconds: a connection whose request has arrived but not been read yet (its goroutine
// not scheduled on a busy machine) is new too, and closing it loses the request, which the
// graceful-shutdown tests caught.
const unusedAfter = 500 * time.Millisecond

// trackUnused makes srv report its connections' states to the returned tracker.
func trackUnused(srv *http.Server) *unused {
	u := &unused{conns: map[net.Conn]time.Time{}}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		u.mu.Lock()
		if st == http.StateNew {
			u.conns[c] = time.Now()
		} else {
			delete(u.conns, c)
		}
		u.mu.Unlock()
		if next != nil {
			next(c, st)
		}
	}
	return u
}

// closeWhile closes, every 50 ms until stop is closed, the connections that have been unused
// for unusedAfter.
func (u *unused) closeWhile(stop <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		u.mu.Lock()
		for c, since := range u.conns {
			if time.Since(since) >= unusedAfter {
				_ = c.Close()
				delete(u.conns, c)
			}
		}
		u.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
