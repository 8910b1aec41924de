package telemetry

import (
	"context"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/acme/shop/foundation/logging"
)

// ClientOptions instrument a connection to another service: client metrics, the request id
// and trace context passed on as metadata, and client spans when tracing is on.
func (t *Telemetry) ClientOptions() []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithChainUnaryInterceptor(
		t.Client.UnaryClientInterceptor(grpcprom.WithExemplarFromContext(Exemplar)),
		t.propagate,
	)}
	if t.Tracing() {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(t.otelgrpcOptions()...)))
	}
	return opts
}

// propagate passes the request id on to the service called, and, when tracing is off (when it
// is on, otelgrpc's client handler does it with a span of its own), the trace context the
// request came with.
func (t *Telemetry) propagate(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if id := logging.RequestID(ctx); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, RequestIDKey, id)
	}
	if !t.Tracing() && trace.SpanContextFromContext(ctx).IsValid() {
		md, _ := metadata.FromOutgoingContext(ctx)
		md = md.Copy()
		t.Propagator.Inject(ctx, MetadataCarrier(md))
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// ServerHandler is the stats handler that makes a span of every gRPC call served over the
// network (health checks aside), or nil when tracing is off.
func (t *Telemetry) ServerHandler() grpc.ServerOption {
	if !t.Tracing() {
		return nil
	}
	return grpc.StatsHandler(otelgrpc.NewServerHandler(t.otelgrpcOptions()...))
}

func (t *Telemetry) otelgrpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.tracer),
		otelgrpc.WithPropagators(t.Propagator),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	}
}

// MetadataCarrier adapts gRPC metadata to the propagators (keys are lower case in metadata).
type MetadataCarrier metadata.MD

// Get implements propagation.TextMapCarrier.
func (c MetadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set implements propagation.TextMapCarrier.
func (c MetadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

// Keys implements propagation.TextMapCarrier.
func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
