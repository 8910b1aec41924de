package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// collector is an OTLP/HTTP trace receiver (POST /v1/traces, protobuf) that counts what the
// services export to it and keeps nothing, so that -tracing measures the services' cost of
// making and exporting every span, not a collector's. It answers every export with 200 and an
// empty body, which is an empty ExportTraceServiceResponse: all spans accepted.
type collector struct {
	url string
	srv *http.Server

	mu  sync.Mutex
	got exported
}

// exported is what a collector has received.
type exported struct {
	// Requests are the export requests, Bytes their bodies as sent, Spans the spans in them.
	Requests, Bytes, Spans int64
	// Malformed are the requests whose body was not an ExportTraceServiceRequest.
	Malformed int64
}

func (e exported) sub(o exported) exported {
	return exported{Requests: e.Requests - o.Requests, Bytes: e.Bytes - o.Bytes, Spans: e.Spans - o.Spans, Malformed: e.Malformed - o.Malformed}
}

// startCollector serves a collector on a loopback port the system chooses.
func startCollector() (*collector, error) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &collector{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", c.serve)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	spans, err := countSpans(body)
	c.mu.Lock()
	c.got.Requests++
	c.got.Bytes += int64(len(body))
	c.got.Spans += int64(spans)
	if err != nil {
		c.got.Malformed++
	}
	c.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// received returns what the collector has received so far.
func (c *collector) received() exported {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got
}

func (c *collector) stop() { _ = c.srv.Shutdown(context.Background()) }

// The field numbers of the OTLP messages countSpans walks through
// (opentelemetry/proto/collector/trace/v1 and trace/v1): ExportTraceServiceRequest
// .resource_spans, ResourceSpans.scope_spans, ScopeSpans.spans.
const (
	fieldResourceSpans protowire.Number = 1
	fieldScopeSpans    protowire.Number = 2
	fieldSpans         protowire.Number = 2
)

// countSpans counts the spans of an ExportTraceServiceRequest by reading its wire format, which
// spares the benchmark the OTLP protobuf module.
func countSpans(req []byte) (int, error) {
	n := 0
	err := eachField(req, fieldResourceSpans, func(rs []byte) error {
		return eachField(rs, fieldScopeSpans, func(ss []byte) error {
			return eachField(ss, fieldSpans, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// eachField calls f with the bytes of every length-delimited field num of the message b, and
// skips the other fields.
func eachField(b []byte, num protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}

// tracingEnv is the environment that turns the services' tracing on, every request sampled and
// exported to url, or off. Both set every variable that decides it, so that none is inherited
// from the shell that runs the benchmark.
func tracingEnv(url string) map[string]string {
	if url == "" {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
	}
	return map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "",
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "false", "OTEL_TRACES_SAMPLER": "always_on",
	}
}

func (e exported) String() string {
	return fmt.Sprintf("%d export requests, %.1f MiB, %d spans", e.Requests, float64(e.Bytes)/(1<<20), e.Spans)
}
