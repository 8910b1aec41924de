// Package servicetest helps tests start whole services: in-process through foundation/service,
// or as a separate process, always on addresses the service chose itself (port 0) and reported.
package servicetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service"
)

// WaitHealthy waits until url answers 200 (poll.Until's deadline), failing the test at once
// if exited, when not nil, is closed first (the service stopped on its own).
func WaitHealthy(t testing.TB, url string, exited <-chan struct{}) {
	t.Helper()
	poll.Until(t, func() error {
		select {
		case <-exited:
			t.Fatalf("service exited before %s answered", url)
		default:
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answers %s", url, res.Status)
		}
		return nil
	})
}

// Running is a service's run function running in a goroutine, as main runs it.
type Running struct {
	// Exited is closed once run has returned.
	Exited <-chan struct{}
	// URL is the REST port's base URL ("http://127.0.0.1:41234"), GRPC the gRPC port's address.
	URL, GRPC string
	// Metrics is the URL of the service's metrics ("http://127.0.0.1:41235/metrics").
	Metrics   string
	name      string
	cancel    context.CancelFunc
	err       error // what run returned, once Exited is closed
	listening chan service.Addrs
}

// ErrStillRunning is Wait's error when run has not returned in time.
var ErrStillRunning = errors.New("run has not returned")

// Start runs spec as main does, in a goroutine, with the variables of env (the service's
// addresses default to port 0 on the loopback interface) and its log written to logs, and
// returns once its servers listen. The test fails if the service exits before, or takes more
// than 30 s.
func Start[C any](t testing.TB, spec service.Spec[C], env map[string]string, logs io.Writer) *Running {
	t.Helper()
	r := Launch(spec, env, logs)
	r.WaitListening(t)
	return r
}

// Launch is Start without the wait: several services launched one after the other start at
// the same moment. Call WaitListening before using URL and GRPC.
func Launch[C any](spec service.Spec[C], env map[string]string, logs io.Writer) *Running {
	return LaunchTraced(spec, env, logs, nil)
}

// LaunchTraced is Launch with every span of the service handed to spans, whatever the OTEL_*
// variables say (tracetest.NewSpanRecorder records them in memory).
func LaunchTraced[C any](spec service.Spec[C], env map[string]string, logs io.Writer, spans sdktrace.SpanProcessor) *Running {
	env = withLoopbackAddrs(spec.Name, env)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	r := &Running{Exited: exited, name: spec.Name, cancel: cancel, listening: make(chan service.Addrs, 1)}
	p := service.Process{LookupEnv: envconf.Map(env), Stdout: logs, Listening: func(a service.Addrs) { r.listening <- a }, Spans: spans}
	go func() {
		r.err = service.Run(ctx, spec, p)
		close(exited)
	}()
	return r
}

// WaitListening waits until the servers listen and sets URL and GRPC.
func (r *Running) WaitListening(t testing.TB) {
	t.Helper()
	select {
	case a := <-r.listening:
		r.URL, r.GRPC = "http://"+a.HTTP, a.GRPC
		if a.Metrics != "" {
			r.Metrics = "http://" + a.Metrics + "/metrics"
		}
	case <-r.Exited:
		t.Fatalf("%s exited before listening: %v", r.name, r.err)
	case <-time.After(30 * time.Second):
		r.cancel()
		t.Fatalf("%s not listening after 30s", r.name)
	}
}

// withLoopbackAddrs returns env with the service's HTTP, gRPC and metrics addresses set to port 0 on
// the loopback interface, and APP_ENV to development, where env does not set them.
func withLoopbackAddrs(name string, env map[string]string) map[string]string {
	out := map[string]string{}
	prefix := strings.ToUpper(name) + "_"
	out[prefix+"HTTP_ADDR"], out[prefix+"GRPC_ADDR"], out[prefix+"METRICS_ADDR"] = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	// The binaries default to production; tests use development's conveniences unless they
	// say otherwise.
	out["APP_ENV"] = "development"
	for k, v := range env {
		out[k] = v
	}
	return out
}

// Cancel ends run's context.
func (r *Running) Cancel() { r.cancel() }

// Wait returns what run returned, or ErrStillRunning if it has not returned within d. Once run
// has returned, every call returns the same.
func (r *Running) Wait(d time.Duration) error {
	select {
	case <-r.Exited:
		return r.err
	case <-time.After(d):
		return fmt.Errorf("%w within %v", ErrStillRunning, d)
	}
}

// Stop cancels run's context and waits up to d for it to return.
func (r *Running) Stop(d time.Duration) error {
	r.Cancel()
	return r.Wait(d)
}

// CheckReturns waits up to d for run to return, and fails the test unless it returned nil: at
// once (Fatal) when it is still running.
func (r *Running) CheckReturns(t testing.TB, d time.Duration) {
	t.Helper()
	switch err := r.Wait(d); {
	case errors.Is(err, ErrStillRunning):
		t.Fatalf("%s: run did not return within %v", r.name, d)
	case err != nil:
		t.Errorf("%s: run returned %v, want nil", r.name, err)
	}
}

// WaitReady waits until /readyz answers 200, failing the test if it does not (poll.Until's
// deadline) or the service exits first.
func (r *Running) WaitReady(t testing.TB) {
	t.Helper()
	WaitHealthy(t, r.URL+"/readyz", r.Exited)
}

// LogBuffer collects a service's log output; the service may write to it while the test reads
// it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// metricsLine matches the line a service logs once its metrics port listens, in the text
// format.
var metricsLine = regexp.MustCompile(`msg="metrics server" .*addr=(\S+)`)

// MetricsURL returns the URL of the metrics of a service running as a separate process whose
// text log goes to logs, once WaitServing has returned.
func MetricsURL(t testing.TB, logs *LogBuffer) string {
	t.Helper()
	m := metricsLine.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", logs.String())
	}
	return "http://" + m[1] + "/metrics"
}

// servingLine matches the line serve.Run logs once both servers listen, in the text format.
var servingLine = regexp.MustCompile(`msg=serving .*grpc=(\S+) http=(\S+)`)

// WaitServing waits until a service running as a separate process, whose text log goes to
// logs, reports that it is serving (poll.Until's deadline), and returns its REST base URL and
// gRPC address. It fails the test at once when exited is closed first.
func WaitServing(t testing.TB, logs *LogBuffer, exited <-chan struct{}) (url, grpcAddr string) {
	t.Helper()
	poll.Until(t, func() error {
		if m := servingLine.FindStringSubmatch(logs.String()); m != nil {
			url, grpcAddr = "http://"+m[2], m[1]
			return nil
		}
		select {
		case <-exited:
			t.Fatalf("service exited before serving:\n%s", logs.String())
		default:
		}
		return fmt.Errorf("service not serving:\n%s", logs.String())
	})
	return url, grpcAddr
}
