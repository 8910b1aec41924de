// Package telemetry is what a service reports about itself: Prometheus metrics on a port of
// their own, OpenTelemetry traces exported with OTLP when the standard OTEL_* variables ask for
// it, and the W3C trace context and request id that join one request's lines across services.
//
// Tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT) costs close to nothing: no span is made, no
// instrumentation is installed, and only an incoming traceparent is read, so that its trace id
// still reaches the log lines and the next service.
package telemetry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// LatencyBuckets are the bounds, in seconds, of every latency histogram: from 0.5 ms (a cached
// call) to 10 s (the longest deadline a client sets).
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Options configures New.
type Options struct {
	// Name and Version are the service's, the trace resource's service.name and
	// service.version (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them).
	Name, Version string
	// Getenv reads the OTEL_* variables that decide whether spans are exported.
	Getenv func(string) string
	// SpanProcessor, when set, receives every span and turns tracing on whatever the
	// environment says: tests record spans in memory with it.
	SpanProcessor sdktrace.SpanProcessor
}

// Telemetry holds a service's metrics registry and, when tracing is on, its tracer provider.
type Telemetry struct {
	// Registry holds every metric the service serves at /metrics.
	Registry *prometheus.Registry
	// Server are the gRPC server metrics, and Client those of the service's gRPC clients
	// (go-grpc-middleware's providers/prometheus: grpc_server_handled_total,
	// grpc_client_handling_seconds …).
	Server *grpcprom.ServerMetrics
	Client *grpcprom.ClientMetrics
	// batchKeys is batch_fetch_keys{loader}: the keys per fetch of each batched lookup.
	batchKeys *prometheus.HistogramVec
	// Propagator reads and writes W3C traceparent, tracestate and baggage.
	Propagator propagation.TextMapPropagator

	tracer   *sdktrace.TracerProvider // nil when tracing is off
	shutdown func(context.Context) error
}

// New returns the service's telemetry: a registry with the Go and process collectors and the
// gRPC metrics registered, and a tracer provider exporting with OTLP when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the exporter reads
// the other OTEL_EXPORTER_OTLP_* variables, the SDK OTEL_TRACES_SAMPLER and OTEL_BSP_*).
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keeps it off. Shut it down when done.
func New(ctx context.Context, opts Options) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	server := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(LatencyBuckets)))
	client := grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(LatencyBuckets)))
	batchKeys := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "batch_fetch_keys",
		Help:    "Keys looked up per query by each batched lookup (foundation/batch): 1 when idle, larger under load.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	}, []string{"loader"})
	if err := registerAll(reg,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		server, client, batchKeys,
	); err != nil {
		return nil, err
	}
	t := &Telemetry{
		Registry: reg, Server: server, Client: client, batchKeys: batchKeys,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		shutdown:   func(context.Context) error { return nil },
	}
	processor := opts.SpanProcessor
	if processor == nil {
		exporter, err := newExporter(ctx, opts.Getenv)
		if err != nil || exporter == nil {
			return t, err
		}
		processor = sdktrace.NewBatchSpanProcessor(exporter)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", opts.Name), attribute.String("service.version", opts.Version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	t.tracer = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(processor))
	t.shutdown = t.tracer.Shutdown
	return t, nil
}

// newExporter returns the OTLP exporter the environment asks for, or nil for none.
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if b, _ := strconv.ParseBool(getenv("OTEL_SDK_DISABLED")); b {
		return nil, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	switch e := getenv("OTEL_TRACES_EXPORTER"); e {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp or none", e)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		return otlptracehttp.New(ctx)
	case "grpc":
		return otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", protocol)
	}
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// Register adds the service's own collectors to the registry.
func (t *Telemetry) Register(cs ...prometheus.Collector) error { return registerAll(t.Registry, cs...) }

// BatchKeys returns the observer of the batched lookup called loader, for batch.Loader.Observe.
func (t *Telemetry) BatchKeys(loader string) func(keys int) {
	h := t.batchKeys.WithLabelValues(loader)
	return func(keys int) { h.Observe(float64(keys)) }
}

// Tracing reports whether spans are recorded and exported.
func (t *Telemetry) Tracing() bool { return t.tracer != nil }

// TracerProvider returns the provider spans are made with, nil when tracing is off.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t.tracer == nil {
		return nil
	}
	return t.tracer
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Telemetry) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// MetricsHandler serves the registry in the Prometheus text format, or OpenMetrics (with
// exemplars) to a scraper that asks for it.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: t.Registry})
}

// Exemplar labels an observation with the trace of ctx when that trace is sampled, so that a
// dashboard can jump from a slow bucket to a trace that fell into it.
func Exemplar(ctx context.Context) prometheus.Labels {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		return prometheus.Labels{"trace_id": sc.TraceID().String()}
	}
	return nil
}

// RequestIDHeader is the REST header of the request id, and RequestIDKey its gRPC metadata
// key.
const (
	RequestIDHeader = "X-Request-Id"
	RequestIDKey    = "x-request-id"
)

// ValidRequestID reports whether id may be kept as a request's id: 1 to 64 characters of
// A–Z, a–z, 0–9, '.', '_' and '-', safe in a header, a log line and a metric exemplar.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh request id: 32 random hex digits. Request ids need to be
// unique, not secret, so they come from math/rand's per-thread generator rather than the
// system's, which costs a system call.
func NewRequestID() string {
	var b [32]byte
	const hex = "0123456789abcdef"
	for i := 0; i < 2; i++ {
		r := rand.Uint64() //nolint:gosec // unique, not secret: see above
		for j := 0; j < 16; j++ {
			b[i*16+j] = hex[r&0xf]
			r >>= 4
		}
	}
	return string(b[:])
}

// MaxBatchedIDs is how many request ids one gRPC call may carry (RequestIDs).
const MaxBatchedIDs = 128

// RequestIDs returns the id to serve a gRPC call under: the caller's when it is well-formed,
// or, for a call made on behalf of several requests at once (cart's batched token checks), the
// caller's comma-separated list of at most MaxBatchedIDs well-formed ids, so that the call's
// log line names every request it served; else a new one.
func RequestIDs(sent string) string {
	if ValidRequestID(sent) {
		return sent
	}
	// Counted and walked rather than split, which would allocate on every call that sent no id.
	if n := strings.Count(sent, ",") + 1; n < 2 || n > MaxBatchedIDs {
		return NewRequestID()
	}
	for id := range strings.SplitSeq(sent, ",") {
		if !ValidRequestID(id) {
			return NewRequestID()
		}
	}
	return sent
}

// RequestID returns the id to serve a request under: the client's own when it is well-formed,
// else a new one.
func RequestID(sent string) string {
	if ValidRequestID(sent) {
		return sent
	}
	return NewRequestID()
}
