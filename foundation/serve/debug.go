package serve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Debug serves the runtime profiles (net/http/pprof) on addr until ctx ends. It is opt-in
// (CUSTOMERS_DEBUG_ADDR, CART_DEBUG_ADDR) and on a loopback address unless explicitly allowed
// beyond (the settings refuse anything else): profiles reveal internals.
func Debug(ctx context.Context, addr string, log *slog.Logger) error {
	lis, err := Listen(ctx, addr)
	if err != nil {
		return err
	}
	serveAside(ctx, lis, debugServer(), "debug", log)
	return nil
}

// debugServer is the pprof server. A CPU profile or an execution trace answers only after
// recording for the seconds asked (30 by default; make bench asks for twice a scenario's
// length): DebugWriteTimeout leaves room for nearly five minutes, and pprof refuses to record
// for longer than the server may write.
func debugServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return asideServer(mux, DebugWriteTimeout)
}

// AsideWriteTimeout bounds how long an operator's port (metrics) takes to answer a request:
// a scrape takes milliseconds. DebugWriteTimeout is the pprof server's (debugServer).
const (
	AsideWriteTimeout = 30 * time.Second
	DebugWriteTimeout = 5 * time.Minute
)

// Aside serves h on lis until ctx ends: the ports for operators (metrics), which stay up while
// the API drains and shuts down gracefully.
func Aside(ctx context.Context, lis net.Listener, h http.Handler, name string, log *slog.Logger) {
	serveAside(ctx, lis, asideServer(h, AsideWriteTimeout), name, log)
}

// asideServer returns a server for an operator's port with every timeout set, as HTTPServer's,
// so that a client that sends slowly, reads slowly or keeps a connection idle cannot hold it
// and its goroutine for ever: these ports are reachable by whatever the network lets in.
func asideServer(h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// serveAside serves srv on lis until ctx ends.
func serveAside(ctx context.Context, lis net.Listener, srv *http.Server, name string, log *slog.Logger) {
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	log.Info(name+" server", "addr", lis.Addr().String())
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" server", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
}
