package gateway

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/acme/shop/foundation/logging"
	"github.com/acme/shop/foundation/telemetry"
)

// instrument wraps the REST port's handler, outermost first: the request id (kept from the
// client's X-Request-Id when well-formed, else new, and sent back on every response); the
// trace context (a span per request named by its route when tracing is on, else only the
// client's traceparent read, so that its trace id reaches the logs and customers); and the
// request metrics by route pattern, method and status.
func instrument(h http.Handler, t *telemetry.Telemetry) (http.Handler, error) {
	labels := []string{"code", "method", "route"}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_server_requests_total",
		Help: "REST requests answered, by route pattern (as in the OpenAPI document), method and status code.",
	}, labels)
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_server_request_duration_seconds",
		Help:    "Time to answer a REST request, by route pattern, method and status code.",
		Buckets: telemetry.LatencyBuckets,
	}, labels)
	if err := t.Register(requests, duration); err != nil {
		return nil, err
	}
	opts := []promhttp.Option{promhttp.WithLabelFromCtx("route", routeOf), promhttp.WithExemplarFromContext(telemetry.Exemplar)}
	h = promhttp.InstrumentHandlerDuration(duration, promhttp.InstrumentHandlerCounter(requests, h, opts...), opts...)
	h = withRoute(h)
	if tp := t.TracerProvider(); tp != nil {
		h = otelhttp.NewHandler(h, "",
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(t.Propagator),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
			otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != HealthzPath && r.URL.Path != ReadyzPath }),
		)
	} else {
		h = extractTrace(h, t.Propagator)
	}
	return withRequestID(h), nil
}

// withRequestID gives the request its id.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := telemetry.RequestID(r.Header.Get(telemetry.RequestIDHeader))
		w.Header().Set(telemetry.RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(logging.WithRequestID(r.Context(), id)))
	})
}

// extractTrace continues the client's trace without tracing: the trace context it sent goes
// into the request's context, from where the logs and the metadata to the services take it.
func extractTrace(next http.Handler, p propagation.TextMapPropagator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") != "" {
			r = r.WithContext(p.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		next.ServeHTTP(w, r)
	})
}

// route holds the route pattern a request matched, learnt as it is routed and read by the
// metrics and the span once it is answered.
type route struct{ pattern string }

type routeKey struct{}

// unmatched is the route label of a request that matched no route (a 404, say).
const unmatched = "unmatched"

func withRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := &route{}
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, rt))
		next.ServeHTTP(w, r)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(r.Method + " " + routeOf(r.Context()))
			if rt.pattern != "" {
				span.SetAttributes(attribute.String("http.route", rt.pattern))
			}
		}
	})
}

func routeOf(ctx context.Context) string {
	if rt, ok := ctx.Value(routeKey{}).(*route); ok && rt.pattern != "" {
		return rt.pattern
	}
	return unmatched
}

func setRoute(ctx context.Context, pattern string) {
	if rt, ok := ctx.Value(routeKey{}).(*route); ok {
		rt.pattern = pattern
	}
}

// named serves a fixed path under its route pattern.
func named(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r.Context(), pattern)
		h.ServeHTTP(w, r)
	})
}

// callMetadata is the metadata the gateway adds to every call it makes: the request id and
// the trace context, which the in-process channel would otherwise lose (it passes metadata,
// not the request's context values). It also records the route the request matched.
func callMetadata(p propagation.TextMapPropagator) func(context.Context, *http.Request) metadata.MD {
	return func(ctx context.Context, _ *http.Request) metadata.MD {
		if pattern, ok := runtime.HTTPPathPattern(ctx); ok {
			setRoute(ctx, pattern)
		}
		md := metadata.MD{}
		if id := logging.RequestID(ctx); id != "" {
			md.Set(telemetry.RequestIDKey, id)
		}
		if trace.SpanContextFromContext(ctx).IsValid() {
			p.Inject(ctx, telemetry.MetadataCarrier(md))
		}
		return md
	}
}
