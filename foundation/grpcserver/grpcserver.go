// Package grpcserver builds the gRPC server both services run: the interceptor chain (logging,
// panic recovery, the service's auth hook, protovalidate), health checking and reflection.
package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// MaxMessageSize is the largest request the server accepts, the same limit as the REST body.
const MaxMessageSize = 1 << 20

// Options configures New.
type Options struct {
	// Logger receives one line per finished call and every recovered panic.
	Logger *slog.Logger
	// Auth, when set, runs after recovery and before validation: it authenticates the caller
	// and puts the identity into the context, or rejects the call.
	Auth grpc.UnaryServerInterceptor
	// ServerOptions are appended to the server's own options (credentials, say).
	ServerOptions []grpc.ServerOption
}

// Server is a gRPC server with its health service. Register the service implementations on
// GRPC, then serve it.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
}

// New returns a server with the interceptor chain, health checking and reflection registered.
// Every registered service is reported SERVING by the empty service name until Shutdown.
func New(opts Options) (*Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("protovalidate: %w", err)
	}
	chain := []grpc.UnaryServerInterceptor{
		logging.UnaryServerInterceptor(interceptorLogger(opts.Logger), logging.WithLogOnEvents(logging.FinishCall)),
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoverPanic(opts.Logger))),
	}
	if opts.Auth != nil {
		chain = append(chain, opts.Auth)
	}
	chain = append(chain, ValidationInterceptor(validator))

	srv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(chain...),
		grpc.MaxRecvMsgSize(MaxMessageSize),
	}, opts.ServerOptions...)...)

	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return &Server{GRPC: srv, Health: hs}, nil
}

// MarkServing reports every registered service, and the server as a whole, as SERVING.
func (s *Server) MarkServing() {
	for name := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}

// MarkNotServing makes health checks fail so that load balancers stop sending new calls.
func (s *Server) MarkNotServing() {
	s.Health.Shutdown()
}

// interceptorLogger adapts slog to go-grpc-middleware's logging interface. Only call metadata
// (method, code, duration, peer) is logged, never payloads or headers.
func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// recoverPanic logs a panic with its stack and answers with a generic Internal error.
func recoverPanic(l *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		l.ErrorContext(ctx, "panic in gRPC handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}
