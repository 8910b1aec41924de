// Package servetest helps tests start a whole service through its run function.
package servetest

import (
	"context"
	"net"
	"net/http"
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

// Env turns a map into a getenv function.
func Env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
