package logging

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/acme/shop/foundation/secret"
)

func TestNewRedactsSecretsByType(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, format, "info")
			if err != nil {
				t.Fatal(err)
			}
			log.Info("starting", "jwt_secret", secret.New("hunter22-hunter22"), "dev_jwt_secret", true, "token_ttl", "15m")
			out := buf.String()
			if strings.Contains(out, "hunter22") {
				t.Errorf("log line contains the secret: %s", out)
			}
			// Attributes whose keys merely mention a secret or a token stay visible: the warning
			// that the public development secret is in use must be seen.
			for _, want := range []string{"dev_jwt_secret", "true", "token_ttl", "15m"} {
				if !strings.Contains(out, want) {
					t.Errorf("log line lost %q: %s", want, out)
				}
			}
		})
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct{ name, format, level string }{
		{"bad format", "xml", "info"},
		{"bad level", "text", "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(&bytes.Buffer{}, tt.format, tt.level); err == nil {
				t.Errorf("New(%q, %q) succeeded, want an error", tt.format, tt.level)
			}
		})
	}
}

func TestNewHonoursLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "text", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("quiet")
	if buf.Len() != 0 {
		t.Errorf("info line written at level warn: %q", buf.String())
	}
}

func TestNewAddsRequestAndTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	ctx = WithRequestID(ctx, "req-1")
	log.With("service", "cart").WithGroup("g").InfoContext(ctx, "finished call", "k", "v")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), lines)
	}
	for _, want := range []string{`"request_id":"req-1"`, `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`, `"service":"cart"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %s lacks %s", lines[0], want)
		}
	}
	if strings.Contains(lines[1], "request_id") || strings.Contains(lines[1], "trace_id") {
		t.Errorf("a line without a request carries ids: %s", lines[1])
	}
}
