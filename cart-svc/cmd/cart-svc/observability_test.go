package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/telemetry/telemetrytest"
)

const (
	// A traceparent as a client that traces would send it (W3C Trace Context's example).
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// getCart sends GET /api/v1/carts/me with token and headers, and returns the response's
// headers.
func getCart(t *testing.T, base, token string, headers map[string]string) http.Header {
	t.Helper()
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	res := servicetest.DoHeader(t, http.MethodGet, base+"/api/v1/carts/me", servicetest.Bearer(token), h, nil)
	if res.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/carts/me: %d %s", res.Code, res.Raw)
	}
	return res.Header
}

// One authenticated cart request, with tracing off: both services count it in their metrics,
// the request id is echoed and joins the log lines of both, and the client's trace id reaches
// both logs.
func TestMetricsAndCorrelation(t *testing.T) {
	c := startCustomers(t, "sqlite", nil)
	h := start(t, "sqlite", c.grpc, nil)
	_, _, token := c.shopper()
	customersMetrics := servicetest.MetricsURL(t, c.logs)

	validate := map[string]string{"grpc_service": "customers.v1.AuthService", "grpc_method": "ValidateTokens", "grpc_code": "OK"}
	route := map[string]string{"route": "/api/v1/carts/{user_id}", "code": "200", "method": "get"}
	cartBefore, customersBefore := telemetrytest.Scrape(t, h.metrics), telemetrytest.Scrape(t, customersMetrics)

	const id = "obs-test.request_1"
	res := getCart(t, h.rest, token, map[string]string{"X-Request-Id": id, "Traceparent": traceparent})
	if got := res.Get("X-Request-Id"); got != id {
		t.Errorf("X-Request-Id = %q, want the client's %q", got, id)
	}

	cartAfter, customersAfter := telemetrytest.Scrape(t, h.metrics), telemetrytest.Scrape(t, customersMetrics)
	rose := func(name string, before, after map[string]*telemetrytest.Family, labels map[string]string) {
		t.Helper()
		b, a := telemetrytest.Value(before, name, labels), telemetrytest.Value(after, name, labels)
		if a < b+1 {
			t.Errorf("%s%v went from %v to %v, want it to rise by at least 1", name, labels, b, a)
		}
	}
	rose("grpc_client_handled_total", cartBefore, cartAfter, validate)
	rose("grpc_client_handling_seconds", cartBefore, cartAfter, map[string]string{"grpc_method": "ValidateTokens"})
	rose("grpc_server_handled_total", customersBefore, customersAfter, validate)
	rose("customers_token_validations_total", customersBefore, customersAfter, map[string]string{"result": "valid"})
	rose("http_server_requests_total", cartBefore, cartAfter, route)
	rose("grpc_server_handled_total", cartBefore, cartAfter, map[string]string{"grpc_method": "GetCart", "grpc_code": "OK"})
	if v := telemetrytest.Value(cartAfter, "cart_customers_reachable", nil); v != 1 {
		t.Errorf("cart_customers_reachable = %v, want 1", v)
	}
	for _, name := range []string{"go_sql_open_connections", "go_goroutines", "process_resident_memory_bytes", "batch_fetch_keys"} {
		if cartAfter[name] == nil || customersAfter[name] == nil {
			t.Errorf("%s missing from a service's metrics", name)
		}
	}

	for name, logs := range map[string]*servicetest.LogBuffer{"cart": h.logs, "customers": c.logs} {
		poll.Until(t, func() error {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "request_id="+id) && strings.Contains(line, "trace_id="+clientTraceID) {
					return nil
				}
			}
			return fmt.Errorf("no line of %s's log has the request's ids", name)
		})
	}

	// Concurrent requests share customers' batched validations: every request id still reaches
	// customers' log, in the line of the call that served it.
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() { getCart(t, h.rest, token, map[string]string{"X-Request-Id": fmt.Sprintf("burst-%d", i)}) })
	}
	wg.Wait()
	poll.Until(t, func() error {
		logs := c.logs.String()
		for i := range 24 {
			if !regexp.MustCompile(fmt.Sprintf(`request_id=\S*\bburst-%d\b`, i)).MatchString(logs) {
				return fmt.Errorf("burst-%d's request id not in customers' log", i)
			}
		}
		return nil
	})

	// A malformed id is replaced; metrics are not on the REST port.
	res = getCart(t, h.rest, token, map[string]string{"X-Request-Id": "two words"})
	if got := res.Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
		t.Errorf("X-Request-Id for a malformed one = %q, want a new id", got)
	}
	if r := servicetest.Do(t, http.MethodGet, h.rest+"/metrics", "", nil); r.Code != http.StatusNotFound {
		t.Errorf("GET /metrics on the REST port: %d, want 404", r.Code)
	}
}

// With tracing on, one REST call to cart with a traceparent makes one trace: cart's HTTP span,
// its gRPC span, the ValidateTokens client span, customers' server span, and the database
// spans of both services, each the child of the one before.
func TestTraceAcrossServices(t *testing.T) {
	collector := telemetrytest.NewCollector(t)
	c := startCustomers(t, "sqlite", map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "20",
	})
	rec := tracetest.NewSpanRecorder()
	h := harnessOf(t, servicetest.StartTracedOn(t, spec, "sqlite", map[string]string{"CART_CUSTOMERS_ADDR": c.grpc}, rec))
	_, _, token := c.shopper()

	getCart(t, h.rest, token, map[string]string{"Traceparent": traceparent})

	inTrace := func(spans []telemetrytest.Span) []telemetrytest.Span {
		var out []telemetrytest.Span
		for _, s := range spans {
			if s.TraceID == clientTraceID {
				out = append(out, s)
			}
		}
		return out
	}
	find := func(spans []telemetrytest.Span, service, name string, kind trace.SpanKind, parent string) telemetrytest.Span {
		t.Helper()
		for _, s := range spans {
			if s.Service == service && s.Kind == kind && strings.HasPrefix(s.Name, name) && s.ParentID == parent {
				return s
			}
		}
		t.Fatalf("no %v span %q of %s with parent %s among:\n%v", kind, name, service, parent, spans)
		return telemetrytest.Span{}
	}
	serverName := "customers.v1.AuthService/ValidateTokens"
	poll.Until(t, func() error {
		for _, s := range inTrace(collector.Spans()) {
			if s.Name == serverName && s.Kind == trace.SpanKindServer {
				return nil
			}
		}
		return errors.New("customers' server span not collected")
	})
	var spans []telemetrytest.Span
	poll.Until(t, func() error {
		spans = append(inTrace(telemetrytest.Recorded(rec)), inTrace(collector.Spans())...)
		for _, s := range spans {
			if s.Service == "cart" && s.Kind == trace.SpanKindServer && s.ParentID == clientSpanID {
				return nil
			}
		}
		return errors.New("cart's server span, child of the client's, not recorded")
	})

	httpSpan := find(spans, "cart", "GET /api/v1/carts/{user_id}", trace.SpanKindServer, clientSpanID)
	rpc := find(spans, "cart", "cart.v1.CartService/GetCart", trace.SpanKindServer, httpSpan.SpanID)
	client := find(spans, "cart", serverName, trace.SpanKindClient, rpc.SpanID)
	server := find(spans, "customers", serverName, trace.SpanKindServer, client.SpanID)
	find(spans, "customers", "sql.", trace.SpanKindClient, server.SpanID)
	find(spans, "cart", "sql.", trace.SpanKindClient, rpc.SpanID)

	// Scraped as OpenMetrics, the GetCart histogram carries the request's trace id as the
	// exemplar of the bucket it fell into, so that a dashboard can jump from a slow bucket to
	// its trace.
	exemplar := regexp.MustCompile(`(?m)^grpc_server_handling_seconds_bucket\{[^}]*grpc_method="GetCart"[^}]*\} \S+ # \{trace_id="([0-9a-f]{32})"\}`)
	m := exemplar.FindStringSubmatch(scrapeOpenMetrics(t, h.metrics))
	if m == nil || m[1] != clientTraceID {
		t.Errorf("GetCart's handling-time exemplar %v, want trace_id=%s", m, clientTraceID)
	}
}

// scrapeOpenMetrics fetches url (a /metrics endpoint) in the OpenMetrics format, the one that
// carries exemplars, as Prometheus asks for it.
func scrapeOpenMetrics(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/openmetrics-text") {
		t.Fatalf("scrape %s: %s %q, %v", url, res.Status, res.Header.Get("Content-Type"), err)
	}
	return string(body)
}
