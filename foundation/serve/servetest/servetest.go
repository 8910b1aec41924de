// Package servetest helps tests start a whole service through its run function.
package servetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// WaitHealthy polls url until it answers 200, failing the test after timeout or as soon as
// exited is closed (the service stopped on its own).
func WaitHealthy(t testing.TB, url string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
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
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not healthy after %v", url, timeout)
}

// Running is a service's run function running in a goroutine, as main runs it.
type Running struct {
	// Exited is closed once run has returned.
	Exited <-chan struct{}
	cancel context.CancelFunc
	done   chan error
}

// ErrStillRunning is Wait's error when run has not returned in time.
var ErrStillRunning = errors.New("run has not returned")

// Start calls run in a goroutine with a context that Cancel ends, as a signal would.
func Start(run func(ctx context.Context) error) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- run(ctx)
		close(exited)
	}()
	return &Running{Exited: exited, cancel: cancel, done: done}
}

// Cancel ends run's context.
func (r *Running) Cancel() { r.cancel() }

// Wait returns what run returned, or ErrStillRunning if it has not returned within d.
func (r *Running) Wait(d time.Duration) error {
	select {
	case err := <-r.done:
		return err
	case <-time.After(d):
		return fmt.Errorf("%w within %v", ErrStillRunning, d)
	}
}

// Stop cancels run's context and waits up to d for it to return.
func (r *Running) Stop(d time.Duration) error {
	r.Cancel()
	return r.Wait(d)
}

// Env turns a map into a getenv function.
func Env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
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
