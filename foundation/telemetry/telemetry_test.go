package telemetry

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestRequestID(t *testing.T) {
	for _, id := range []string{"a", "req-1", "A.b_c-9", strings.Repeat("x", 64)} {
		if got := RequestID(id); got != id {
			t.Errorf("RequestID(%q) = %q, want it kept", id, got)
		}
	}
	for _, id := range []string{"", "two words", strings.Repeat("x", 65), "a/b", "é", "a\nb", "<script>"} {
		got := RequestID(id)
		if got == id || !ValidRequestID(got) || len(got) != 32 {
			t.Errorf("RequestID(%q) = %q, want a new 32-digit id", id, got)
		}
	}
	if a, b := NewRequestID(), NewRequestID(); a == b {
		t.Error("two new request ids are equal")
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestTracingFollowsTheEnvironment(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		env     map[string]string
		tracing bool
		err     string
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint over gRPC", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"SDK disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"unknown exporter", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "zipkin"}, false, "OTEL_TRACES_EXPORTER"},
		{"unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "OTEL_EXPORTER_OTLP_PROTOCOL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := New(ctx, Options{Name: "shop", Getenv: env(tt.env)})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tel.Shutdown(ctx) }()
			if tel.Tracing() != tt.tracing || (tel.TracerProvider() != nil) != tt.tracing {
				t.Errorf("tracing = %v, want %v", tel.Tracing(), tt.tracing)
			}
		})
	}
}

func TestExemplarOnlyForSampledTraces(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	if got := Exemplar(sampled)["trace_id"]; got != tid.String() {
		t.Errorf("exemplar of a sampled trace = %q, want its id", got)
	}
	if got := Exemplar(unsampled); got != nil {
		t.Errorf("exemplar of an unsampled trace = %v, want none (no stored trace to point to)", got)
	}
	if got := Exemplar(context.Background()); got != nil {
		t.Errorf("exemplar without a trace = %v", got)
	}
}

func TestRequestIDs(t *testing.T) {
	for _, sent := range []string{"a", "a,b", "req-1,req-2,req-3", strings.TrimSuffix(strings.Repeat("x,", MaxBatchedIDs), ",")} {
		if got := RequestIDs(sent); got != sent {
			t.Errorf("RequestIDs(%q) = %q, want it kept", sent, got)
		}
	}
	for _, sent := range []string{"", "a,", ",a", "a,,b", "a, b", "a,two words", strings.Repeat("x,", MaxBatchedIDs) + "x"} {
		if got := RequestIDs(sent); got == sent || !ValidRequestID(got) {
			t.Errorf("RequestIDs(%q) = %q, want a new id", sent, got)
		}
	}
}
