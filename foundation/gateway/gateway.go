// Package gateway serves a service's REST API: grpc-gateway in front of the service's gRPC
// services, plus /healthz, /readyz and Swagger UI. The gateway is a gRPC client like any other:
// the services pass it grpcserver's in-process channel, which runs every interceptor (auth,
// validation, logging, recovery) for REST callers too, without a second trip through the
// network stack.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/swaggest/swgui/v5emb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/telemetry"
)

// MaxBodyBytes is the largest request body accepted; larger bodies get 413. It is the gRPC
// server's message limit, so that a body the gateway accepts is never refused behind it.
const MaxBodyBytes = grpcserver.MaxMessageSize

// Paths served next to the API.
const (
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
	DocsPath    = "/api/v1/docs/"
	SpecPath    = "/api/v1/docs/openapi.json"
)

// RegisterFunc registers one gRPC service's REST handlers on mux, calling the service through
// conn. Service builds one from the generated code.
type RegisterFunc func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error

// Service adapts a service's generated gateway registration and client constructor, such as
// customersv1.RegisterUserServiceHandlerClient and customersv1.NewUserServiceClient, to a
// RegisterFunc.
func Service[C any](register func(context.Context, *runtime.ServeMux, C) error, newClient func(grpc.ClientConnInterface) C) RegisterFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
		return register(ctx, mux, newClient(conn))
	}
}

// Config describes one service's REST facade.
type Config struct {
	// Title names the service in Swagger UI.
	Title string
	// Conn reaches the service's gRPC services: grpcserver.Server.Local in the services.
	Conn grpc.ClientConnInterface
	// Register lists the gRPC services to expose.
	Register []RegisterFunc
	// Services are the descriptors of those services; their methods' `(shop.v1.success)`
	// options decide which RPCs answer 201 or 204 instead of 200.
	Services []protoreflect.ServiceDescriptor
	// OpenAPI is the document Swagger UI shows, served at SpecPath.
	OpenAPI []byte
	// Ready reports whether the service can serve requests (its database is reachable, say).
	Ready func(ctx context.Context) error
	// Dependencies are checked by /readyz too, but only reported: each one's state is in the
	// body, and a log line says when it changes. A dependency that only some calls need
	// (customers, for cart's authenticated calls) must not take the whole service out of its
	// load balancer.
	Dependencies map[string]func(ctx context.Context) error
	// Logger receives readiness failures.
	Logger *slog.Logger
	// CORSOrigins are the origins whose pages may call the API from a browser; none sends no
	// CORS headers.
	CORSOrigins []string
	// Telemetry, when set, gives every request an id, continues or starts its trace, and
	// counts it in the REST metrics.
	Telemetry *telemetry.Telemetry
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed, and only for
	// requests whose connection comes from one of them (see ForwardedClient). Empty: the
	// client is always the connection's remote address.
	TrustedProxies []netip.Prefix
}

// New returns the HTTP handler of a service's REST port.
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	codes := successStatuses(cfg.Services)
	rs, err := parseRoutes(cfg.OpenAPI)
	if err != nil {
		return nil, err
	}
	muxOpts := []runtime.ServeMuxOption{
		runtime.WithRoutingErrorHandler(rs.routingError),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newJSONMarshaler()),
		// forwardETag first: codes.forward may write the status line, after which no header can be set.
		runtime.WithForwardResponseOption(forwardETag),
		runtime.WithForwardResponseOption(codes.forward),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
	}
	if cfg.Telemetry != nil {
		muxOpts = append(muxOpts, runtime.WithMetadata(callMetadata(cfg.Telemetry.Propagator)))
	}
	gw := runtime.NewServeMux(muxOpts...)
	for _, register := range cfg.Register {
		if err := register(ctx, gw, cfg.Conn); err != nil {
			return nil, fmt.Errorf("register gateway handler: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("GET "+HealthzPath, named(HealthzPath, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("GET "+ReadyzPath, named(ReadyzPath, readyz(cfg.Ready, cfg.Dependencies, cfg.Logger)))
	mux.Handle("GET "+SpecPath, named(SpecPath, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cfg.OpenAPI)
	})))
	ui := v5emb.New(cfg.Title, SpecPath, DocsPath)
	docsCSP, err := docsPolicy(ctx, ui)
	if err != nil {
		return nil, err
	}
	mux.Handle("GET "+DocsPath, named(DocsPath+"*", ui))
	mux.Handle("/", headAsGET(conditionalGET(checkIdempotencyKey(gw, gw))))
	h := withCORS(securityHeaders(limitBody(trimSlash(withOptions(remoteAddr(mux, cfg.TrustedProxies), rs))), docsCSP), cfg.CORSOrigins)
	if cfg.Telemetry == nil {
		return h, nil
	}
	return instrument(h, cfg.Telemetry)
}

// remoteAddr makes sure the request's context carries the client's address, which
// grpcserver.ClientAddr reads for in-process calls. serve.HTTPServer already puts the
// connection's remote address into every connection's context; other servers (httptest's, say)
// get it here. When that address is a trusted proxy's, the client is the one its
// X-Forwarded-For names (ForwardedClient).
func remoteAddr(next http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, ok := grpcserver.RemoteAddr(r.Context())
		if !ok {
			addr = r.RemoteAddr
		}
		client := ForwardedClient(addr, r.Header.Values("X-Forwarded-For"), trusted)
		if !ok || client != addr {
			r = r.WithContext(grpcserver.WithRemoteAddr(r.Context(), client))
		}
		next.ServeHTTP(w, r)
	})
}

// ForwardedClient returns the address of the client behind a request that came in on a
// connection from peer ("host:port") with the X-Forwarded-For header values forwarded. Only a
// peer in trusted is believed: from any other peer, the client is the peer itself, whatever
// the header says. From a trusted proxy, the header is read from the right (each proxy appends
// the address it received the request from), skipping trusted proxies; the first other address
// is the client. The entries left of it were written by the client and are never believed; an
// entry that is not an IP address stops the walk at the hop before it.
func ForwardedClient(peer string, forwarded []string, trusted []netip.Prefix) string {
	if len(trusted) == 0 || len(forwarded) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	hops := strings.Split(strings.Join(forwarded, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap().String()
		if !contains(trusted, a.Unmap()) {
			break
		}
	}
	return client
}

func isTrusted(peer string, trusted []netip.Prefix) bool {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	return err == nil && contains(trusted, a.Unmap())
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readyz answers 200 when ready reports no error within two seconds, else 503. The body also
// says whether each dependency answered within that time ("available" or "unavailable"), and
// the first check that finds a dependency's state changed logs it.
func readyz(ready func(context.Context) error, deps map[string]func(context.Context) error, log *slog.Logger) http.HandlerFunc {
	var mu sync.Mutex
	last := map[string]string{}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		type result struct {
			name string
			err  error
		}
		results := make(chan result, len(deps))
		for name, check := range deps {
			go func() { results <- result{name, check(ctx)} }()
		}
		body := map[string]any{"status": "ready"}
		code := http.StatusOK
		if ready != nil {
			if err := ready(ctx); err != nil {
				log.WarnContext(ctx, "not ready", "err", err)
				body["status"], code = "not ready", http.StatusServiceUnavailable
			}
		}
		if len(deps) > 0 {
			states := map[string]string{}
			for range deps {
				res := <-results
				state := "available"
				if res.err != nil {
					state = "unavailable"
				}
				states[res.name] = state
				mu.Lock()
				prev := last[res.name]
				last[res.name] = state
				// Reachable from the start is the expected state, so not news.
				if prev != state && (prev != "" || res.err != nil) {
					if res.err != nil {
						log.WarnContext(ctx, "dependency unavailable", "dependency", res.name, "err", res.err)
					} else {
						log.InfoContext(ctx, "dependency available", "dependency", res.name)
					}
				}
				mu.Unlock()
			}
			body["dependencies"] = states
		}
		writeJSON(w, code, body)
	}
}

// trimSlash lets every API path be called with a trailing slash: "/api/v1/users/" is routed as
// "/api/v1/users". Swagger UI's own folder keeps its slash.
func trimSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if len(p) > 1 && strings.HasSuffix(p, "/") && p != DocsPath {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimRight(p, "/")
			if r2.URL.RawPath != "" {
				r2.URL.RawPath = strings.TrimRight(r2.URL.RawPath, "/")
			}
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// outgoingHeader forwards the Retry-After header a throttled RPC sets, and the
// Idempotent-Replayed header of an answer replayed for an Idempotency-Key; other response
// metadata stays in gRPC.
func outgoingHeader(key string) (string, bool) {
	if strings.EqualFold(key, "retry-after") {
		return "Retry-After", true
	}
	if strings.EqualFold(key, "idempotent-replayed") {
		return "Idempotent-Replayed", true
	}
	return "", false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes a body in the same shape as the gateway's errors.
func writeError(w http.ResponseWriter, httpCode int, grpcCode int, msg string) {
	writeJSON(w, httpCode, map[string]any{"code": grpcCode, "message": msg, "details": []any{}})
}

var errTooLarge = errors.New("request body exceeds 1 MiB")
