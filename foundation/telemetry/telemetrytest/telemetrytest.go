// Package telemetrytest checks what services report: an OTLP collector that keeps the spans
// it receives, spans recorded in memory in the same shape, and Prometheus metrics scraped and
// parsed.
package telemetrytest

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is what a test checks of a span.
type Span struct {
	// Service is the resource's service.name.
	Service string
	Name    string
	Kind    trace.SpanKind
	// TraceID, SpanID and ParentID are hex; ParentID is "" for a root span.
	TraceID, SpanID, ParentID string
}

func (s Span) String() string {
	return fmt.Sprintf("%s %q (%v) trace=%s span=%s parent=%s", s.Service, s.Name, s.Kind, s.TraceID, s.SpanID, s.ParentID)
}

// Collector is an OTLP/HTTP trace receiver (POST /v1/traces, protobuf), the endpoint a
// service exports to when OTEL_EXPORTER_OTLP_ENDPOINT is its URL.
type Collector struct {
	URL string

	countOnly bool

	mu       sync.Mutex
	spans    []Span
	requests int
	received int
}

// NewCollector starts a collector until the test ends.
func NewCollector(t testing.TB) *Collector {
	c, stop := StartCollector()
	t.Cleanup(stop)
	return c
}

// StartCollector starts a collector on a loopback port until stop is called (benchmarks
// export to it).
func StartCollector() (c *Collector, stop func()) {
	c = &Collector{}
	srv := httptest.NewServer(http.HandlerFunc(c.serve))
	c.URL = srv.URL
	return c, srv.Close
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if c.countOnly {
		n := 0
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
		c.mu.Lock()
		c.received += n
		c.requests++
		c.mu.Unlock()
		writeOK(w)
		return
	}
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Service: service, Name: s.GetName(), Kind: kind(s.GetKind()),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()),
				})
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.received += len(got)
	c.requests++
	c.mu.Unlock()
	writeOK(w)
}

func writeOK(w http.ResponseWriter) {
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// CountOnly makes the collector count the spans it receives without keeping them, as a
// benchmark's sink. Call it before the first export.
func (c *Collector) CountOnly() { c.countOnly = true }

// Received is the number of spans received.
func (c *Collector) Received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

// kind maps OTLP's span kind to the API's (their numbers differ by the unspecified value).
func kind(k tracepb.Span_SpanKind) trace.SpanKind {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return trace.SpanKindInternal
	case tracepb.Span_SPAN_KIND_SERVER:
		return trace.SpanKindServer
	case tracepb.Span_SPAN_KIND_CLIENT:
		return trace.SpanKindClient
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return trace.SpanKindProducer
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return trace.SpanKindConsumer
	default:
		return trace.SpanKindUnspecified
	}
}

// Spans returns the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Requests is the number of export requests received.
func (c *Collector) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// Recorded returns the spans rec has seen end.
func Recorded(rec *tracetest.SpanRecorder) []Span {
	var out []Span
	for _, s := range rec.Ended() {
		out = append(out, fromSDK(s))
	}
	return out
}

func fromSDK(s sdktrace.ReadOnlySpan) Span {
	service := ""
	for _, kv := range s.Resource().Attributes() {
		if kv.Key == "service.name" {
			service = kv.Value.AsString()
		}
	}
	parent := ""
	if s.Parent().IsValid() {
		parent = s.Parent().SpanID().String()
	}
	return Span{
		Service: service, Name: s.Name(), Kind: s.SpanKind(),
		TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(), ParentID: parent,
	}
}

// Scrape fetches url (a /metrics endpoint) and parses it.
func Scrape(t testing.TB, url string) map[string]*Family {
	t.Helper()
	res, err := http.Get(url) //nolint:noctx,gosec // a test's request to the service it started
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	out := map[string]*Family{}
	for name, f := range families {
		out[name] = &Family{f: f}
	}
	return out
}
