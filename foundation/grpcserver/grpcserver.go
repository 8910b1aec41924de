// Package grpcserver builds the gRPC server both services run: the interceptor chain (logging,
// panic recovery, the translation of errors into status codes, the service's auth hook,
// protovalidate), health checking and reflection, and an in-process channel to the same
// services through the same chain, for the REST gateway.
package grpcserver

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"buf.build/go/protovalidate"
	"github.com/fullstorydev/grpchan/inprocgrpc"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/telemetry"
)

// MaxConnectionAgeGrace is how long the calls in flight on a connection that reached its
// maximum age may take to finish before it is closed.
const MaxConnectionAgeGrace = 10 * time.Second

// MaxMessageSize is the largest request the server accepts; the REST gateway's body limit is
// the same constant.
const MaxMessageSize = 1 << 20

// MaxConcurrentStreams is how many calls one client connection may have in flight; HTTP/2
// makes a well-behaved client queue the others, and the server refuses a stream beyond it
// (REFUSED_STREAM). grpc-go allows any number by default, which also weakens its defence
// against rapid-reset floods.
const MaxConcurrentStreams = 256

// MaxHeaderListSize is the largest header list (metadata) of a call the server reads, instead
// of grpc-go's 16 MiB: a bearer token, a traceparent and a request id need a few hundred bytes.
const MaxHeaderListSize = 16 << 10

// DefaultMaxConnectionIdle is how long a client connection with no call in flight stays open
// unless Options.MaxConnectionIdle says otherwise.
const DefaultMaxConnectionIdle = 5 * time.Minute

// DefaultStreamsPerConn bounds the concurrent streams of the streaming methods (Health/Watch,
// server reflection) on one connection; DefaultStreamsPerClient those of one streaming method
// from one client address, and DefaultStreamsPerMethod over all clients, beyond each
// connection's first stream, which is always admitted (limitStreams). Unary calls are bounded
// per connection by MaxConcurrentStreams.
const (
	DefaultStreamsPerConn   = 4
	DefaultStreamsPerClient = 16
	DefaultStreamsPerMethod = 1024
)

// StreamWorkers is the number of goroutines that serve calls; idle, each costs a few KiB.
const StreamWorkers = 128

// Options configures New.
type Options struct {
	// Logger receives one line per finished call and every recovered panic.
	Logger *slog.Logger
	// Auth, when set, runs after recovery and before validation: it authenticates the caller
	// and puts the identity into the context, or rejects the call.
	Auth grpc.UnaryServerInterceptor
	// RateLimit, when set, runs after validation and before Idempotency: it may refuse a call
	// (RESOURCE_EXHAUSTED) before the call holds an Idempotency-Key, so that the refusal is not
	// recorded as the key's answer.
	RateLimit grpc.UnaryServerInterceptor
	// Idempotency, when set, runs after validation, around the handler, and sees the handler's
	// errors already translated into statuses (package idempotency records them as answers).
	Idempotency grpc.UnaryServerInterceptor
	// Errors translates the service's own domain errors (not found, conflict, throttled …)
	// into statuses, and returns nil for an error it does not know. The server asks it for
	// every error a handler or Auth returns that is not already a status error, after the
	// errors every service shares (*validation.Error, permission.ErrDenied) and before those
	// no rule explains (see Unavailable), so handlers return domain errors as they are. ctx is
	// the call's: the map may set response headers with grpc.SetHeader (Retry-After).
	Errors func(ctx context.Context, err error) *status.Status
	// Unavailable reports whether an error means that a dependency (the database) cannot be
	// reached right now: such an error is UNAVAILABLE (503) rather than INTERNAL (500). nil
	// classifies no error so.
	Unavailable func(err error) bool
	// MaxConnectionAge, when positive, closes each client connection after about this long
	// (±10% jitter), letting the calls in flight finish within MaxConnectionAgeGrace. A client
	// balancing over a DNS name then re-resolves it and spreads over replicas added since.
	MaxConnectionAge time.Duration
	// Telemetry, when set, adds the request id and trace context to every call's context,
	// counts calls in its gRPC server metrics, and traces them when tracing is on.
	Telemetry *telemetry.Telemetry
	// Internal reports whether an RPC ("/customers.v1.AuthService/ValidateTokens") is for other
	// services only: only its calls may carry a list of request ids, one per request a batched
	// call serves; other calls keep the first. nil: no RPC is.
	Internal func(fullMethod string) bool
	// MaxConnectionIdle closes a client connection that has had no call in flight for this
	// long; zero means DefaultMaxConnectionIdle.
	MaxConnectionIdle time.Duration
	// StreamsPerConn bounds the concurrent streams of the streaming methods on one connection;
	// StreamsPerClient and StreamsPerMethod bound those of each streaming method from one
	// client address and from all clients, past each connection's first stream, which is
	// always admitted. A stream beyond a bound is RESOURCE_EXHAUSTED at once. Zero means
	// DefaultStreamsPerConn, DefaultStreamsPerClient, DefaultStreamsPerMethod.
	StreamsPerConn, StreamsPerClient, StreamsPerMethod int
	// ClientIPv6Prefix is the prefix length of the network that the per-address stream limit
	// counts an IPv6 client as (clientnet.Key); zero means clientnet.DefaultIPv6Prefix.
	ClientIPv6Prefix int
	// ServerOptions are appended to the network server's own options (credentials, say). They
	// do not apply to the in-process channel, so interceptors belong in the chain above, not
	// here.
	ServerOptions []grpc.ServerOption
}

// Server is a gRPC server with its health service, and an in-process channel to the same
// services. Register the service implementations on the Server itself (it is a
// grpc.ServiceRegistrar), then serve GRPC.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
	// Local calls the registered services in-process, through the same interceptor chain as
	// GRPC: the REST gateway uses it, so a REST request costs no second trip through the
	// network stack and HTTP/2, and is still authenticated, validated and logged like a gRPC
	// call. Requests and responses are copied, as over the network.
	Local *inprocgrpc.Channel
}

// New returns a server with the interceptor chain, health checking and reflection registered.
// Every registered service is reported SERVING by the empty service name until Shutdown.
func New(opts Options) (*Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("protovalidate: %w", err)
	}
	var chain []grpc.UnaryServerInterceptor
	var network []grpc.ServerOption
	streams := []grpc.StreamServerInterceptor{limitStreams(streamLimits{
		perConn:    cmp.Or(opts.StreamsPerConn, DefaultStreamsPerConn),
		perClient:  cmp.Or(opts.StreamsPerClient, DefaultStreamsPerClient),
		perMethod:  cmp.Or(opts.StreamsPerMethod, DefaultStreamsPerMethod),
		ipv6Prefix: opts.ClientIPv6Prefix,
	})}
	if t := opts.Telemetry; t != nil {
		chain = append(chain, observe(t, opts.Internal)...)
		streams = append(streams, t.Server.StreamServerInterceptor())
		if h := t.ServerHandler(); h != nil {
			network = append(network, h)
		}
	}
	chain = append(chain,
		loggingInterceptor(opts.Logger),
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoverPanic(opts.Logger))),
		errorsInterceptor(opts),
	)
	if opts.Auth != nil {
		chain = append(chain, opts.Auth)
	}
	chain = append(chain, validationInterceptor(validator))
	if opts.RateLimit != nil {
		chain = append(chain, opts.RateLimit)
	}
	if opts.Idempotency != nil {
		// errorsInterceptor passes statuses through, so translating here once more changes
		// nothing the outer one would do.
		chain = append(chain, opts.Idempotency, errorsInterceptor(opts))
	}
	var unavailable *prometheus.CounterVec
	if t := opts.Telemetry; t != nil {
		unavailable = unavailableCalls()
		if err := t.Register(unavailable); err != nil {
			return nil, err
		}
	}
	chain = append(chain, repeatOnce(opts, unavailable))

	srv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.UnaryInterceptor(chainUnary(chain)),
		grpc.ChainStreamInterceptor(streams...),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.MaxHeaderListSize(MaxHeaderListSize),
		// A fixed pool of goroutines serves the streams and keeps its grown stacks, instead of
		// a new goroutine per call that grows its stack from scratch. When every worker is
		// busy, grpc falls back to a new goroutine per call, so the pool is sized for the calls
		// in flight, most of which wait on the database, not for the cores
		// (docs/performance.md has the profiles).
		grpc.NumStreamWorkers(StreamWorkers),
		// An idle connection is closed (a client that needs it again reconnects); the server
		// pings a connection silent for a minute and closes it when no answer comes within 20 s,
		// so a vanished client does not hold its connection.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     cmp.Or(opts.MaxConnectionIdle, DefaultMaxConnectionIdle),
			MaxConnectionAge:      opts.MaxConnectionAge,
			MaxConnectionAgeGrace: MaxConnectionAgeGrace,
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
		}),
		// Clients may ping every 20 s, idle or not (cart's customers client pings every 30 s
		// to notice a dead connection); one that pings more often is sent away.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
	}, append(network, opts.ServerOptions...)...)...)

	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	local := new(inprocgrpc.Channel).WithServerUnaryInterceptor(chainUnary(chain))
	return &Server{GRPC: srv, Health: hs, Local: local}, nil
}

// observe returns the outermost interceptors, those of telemetry: the request id and trace
// context, and the gRPC server metrics; internal is Options.Internal.
func observe(t *telemetry.Telemetry, internal func(string) bool) []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{correlate(t, internal), t.Server.UnaryServerInterceptor(grpcprom.WithExemplarFromContext(telemetry.Exemplar))}
}

// RegisterService implements grpc.ServiceRegistrar: the service is served over the network
// and in-process.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.GRPC.RegisterService(desc, impl)
	s.Local.RegisterService(desc, impl)
}

// InProcess reports whether the call being served came through Server.Local, that is from the
// service's own REST gateway, rather than over the network.
func InProcess(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	return ok && p.Addr != nil && p.Addr.Network() == inprocNetwork
}

// ClientAddr is the address of the client behind the call being served, which the login
// throttle counts failures against and the call log records: for a gRPC call its peer's
// address; for a call from the service's own REST gateway (in-process), the address of the
// HTTP connection, which the gateway's request context carries (WithRemoteAddr). Neither comes
// from anything the client sends, so forwarding headers cannot move a client to another
// address. Behind a reverse proxy, this is the proxy's address.
func ClientAddr(ctx context.Context) string {
	addr := ""
	if InProcess(ctx) {
		if client := inprocgrpc.ClientContext(ctx); client != nil {
			addr, _ = RemoteAddr(client)
		}
	} else if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	if addr == "" {
		return "unknown"
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

type remoteAddrKey struct{}

// WithRemoteAddr returns ctx carrying addr, the remote address of the HTTP connection a REST
// request came in on. serve.HTTPServer puts it into every connection's context, and the
// gateway adds it to requests that lack it.
func WithRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteAddrKey{}, addr)
}

// RemoteAddr returns the address WithRemoteAddr put into ctx.
func RemoteAddr(ctx context.Context) (string, bool) {
	addr, ok := ctx.Value(remoteAddrKey{}).(string)
	return addr, ok
}

// inprocNetwork is the network name inprocgrpc gives the peer of in-process calls.
const inprocNetwork = "inproc"

// chainUnary runs interceptors in order, the first outermost, as grpc.ChainUnaryInterceptor
// does; the in-process channel takes a single interceptor.
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			interceptor, inner := interceptors[i], next
			next = func(ctx context.Context, req any) (any, error) { return interceptor(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
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

// Serving reports an error once MarkNotServing was called: /readyz uses it, so that HTTP load
// balancers see a stopping service as not ready, like gRPC ones do.
func (s *Server) Serving(ctx context.Context) error {
	res, err := s.Health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %v", res.GetStatus())
	}
	return nil
}

// loggingInterceptor logs one line per finished call: method, code, duration and client address
// (ClientAddr, so REST calls show the HTTP client), never payloads or metadata (tokens travel
// there). Successes and calls the client cancelled are INFO, client errors and exceeded
// deadlines WARN, server errors ERROR. It checks whether the level is enabled before building the line, so a call costs nothing to log at a level that is
// off (go-grpc-middleware's logging interceptor builds its fields on every call; see
// docs/performance.md).
func loggingInterceptor(l *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		level := levelOf(code)
		if l.Enabled(ctx, level) {
			attrs := []slog.Attr{
				slog.String("grpc.method", info.FullMethod),
				slog.String("grpc.code", code.String()),
				slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000),
			}
			attrs = append(attrs, slog.String("client.address", ClientAddr(ctx)))
			if err != nil {
				attrs = append(attrs, slog.String("grpc.error", status.Convert(err).Message()))
			}
			l.LogAttrs(ctx, level, "finished call", attrs...)
		}
		return resp, err
	}
}

func levelOf(code codes.Code) slog.Level {
	switch code {
	case codes.OK:
		return slog.LevelInfo
	case codes.Canceled:
		// The client hung up: nothing went wrong here.
		return slog.LevelInfo
	default:
		if ServerError(code) {
			return slog.LevelError
		}
		return slog.LevelWarn
	}
}

// recoverPanic logs a panic with its stack and answers with a generic Internal error.
func recoverPanic(l *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		l.ErrorContext(ctx, "panic in gRPC handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}
