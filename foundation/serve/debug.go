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
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	lis, err := Listen(ctx, addr)
	if err != nil {
		return err
	}
	Aside(ctx, lis, mux, "debug", log)
	return nil
}

// Aside serves h on lis until ctx ends: the ports for operators (profiles, metrics), which
// stay up while the API drains and shuts down gracefully.
func Aside(ctx context.Context, lis net.Listener, h http.Handler, name string, log *slog.Logger) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Info(name+" server", "addr", lis.Addr().String())
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" server", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
}
