package grpcserver

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/telemetry"
)

// correlate is the outermost interceptor. It gives the call its request id (the caller's
// x-request-id when well-formed, else a new one) and continues the caller's trace: over the
// network, otelgrpc's stats handler has already started the call's span when tracing is on;
// otherwise the trace context is read from the metadata (the REST gateway writes it there,
// since the in-process channel passes metadata but no context values), and, for a call from
// the gateway with tracing on, the call's server span starts here.
//
// A call of an RPC that internal reports (one for other services only, which production lets
// only them reach) may carry the comma-separated list of the ids of the requests it serves at
// once (telemetry.RequestIDs): cart's batched token validations. Any other call keeps only
// the first id of a list, so that no client can make every line of its calls carry a hundred
// ids of its choosing.
func correlate(t *telemetry.Telemetry, internal func(fullMethod string) bool) grpc.UnaryServerInterceptor {
	var tracer trace.Tracer
	if tp := t.TracerProvider(); tp != nil {
		tracer = tp.Tracer("github.com/acme/shop/foundation/grpcserver")
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		// The values are read one key at a time: metadata.FromIncomingContext copies every key
		// and value of the call's metadata, an allocation per key, on every call.
		sent := ""
		if v := metadata.ValueFromIncomingContext(ctx, telemetry.RequestIDKey); len(v) > 0 {
			sent = v[0]
		}
		var id string
		if strings.IndexByte(sent, ',') >= 0 && internal != nil && internal(info.FullMethod) {
			id = telemetry.RequestIDs(sent)
		} else {
			first, _, _ := strings.Cut(sent, ",")
			id = telemetry.RequestID(first)
		}
		ctx = logging.WithRequestID(ctx, id)
		// Most calls carry no trace context: look before asking the propagators to.
		if (hasIncoming(ctx, "traceparent") || hasIncoming(ctx, "baggage")) && !trace.SpanContextFromContext(ctx).IsValid() {
			md, _ := metadata.FromIncomingContext(ctx)
			ctx = t.Propagator.Extract(ctx, telemetry.MetadataCarrier(md))
		}
		if tracer == nil || !InProcess(ctx) {
			return handler(ctx, req)
		}
		name := strings.TrimPrefix(info.FullMethod, "/")
		service, method, _ := strings.Cut(name, "/")
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.service", service),
			attribute.String("rpc.method", method),
		))
		defer span.End()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(code)))
		if ServerError(code) {
			span.SetStatus(otelcodes.Error, status.Convert(err).Message())
		}
		return resp, err
	}
}

// hasIncoming reports whether the call's metadata has a value for key.
func hasIncoming(ctx context.Context, key string) bool {
	return len(metadata.ValueFromIncomingContext(ctx, key)) > 0
}

// ServerError reports whether code means the server failed, as opposed to the client's
// request being refused, cancelled or out of time: the codes that log at ERROR, that the
// error-ratio alert counts, and that mark a span as failed.
func ServerError(code codes.Code) bool {
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented, codes.Unavailable:
		return true
	}
	return false
}
