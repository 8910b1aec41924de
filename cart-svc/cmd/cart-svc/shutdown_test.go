package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
)

// TestGracefulShutdownUnderLoad stops cart while clients keep sending authenticated requests:
// every request sent before the stop completes with 200 (zero failed requests in the load run),
// and run returns within the shutdown timeout.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	c := startCustomers(t, "sqlite", nil)
	tok := c.login("nonadmin3@email.com", demoPassword)
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{
		"CART_CUSTOMERS_ADDR":  c.grpc,
		"SHUTDOWN_TIMEOUT":     "10s",
		"SHUTDOWN_DRAIN_DELAY": "1s",
		"LOG_LEVEL":            "info",
	})
	s.WaitReady(t)
	base := s.URL

	var stopping atomic.Bool
	var sent, failed, served atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for !stopping.Load() {
				sent.Add(1)
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/api/v1/carts/me", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_ = res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				served.Add(1)
			}
		})
	}
	// The load is steady once every client has been served a few times.
	poll.Until(t, func() error {
		if n := served.Load(); n < 100 {
			return fmt.Errorf("%d requests served under load, want 100 before the stop", n)
		}
		return nil
	})
	// The service is told to stop; during the drain delay it reports not ready but still
	// serves, and the load generator stops sending, as a load balancer stops routing to a
	// replica that reports not ready. Every request sent must complete.
	stopAt := time.Now()
	s.Cancel()
	poll.Until(t, func() error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/readyz", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil //nolint:nilerr // past the drain the listener has closed: the stop is seen
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz after the stop = %s, want 503", res.Status)
		}
		return nil
	})
	stopping.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed around the shutdown, want 0", failed.Load(), sent.Load())
	}
	s.CheckReturns(t, 15*time.Second)
	if took := time.Since(stopAt); took > 10*time.Second {
		t.Errorf("shutdown took %v, beyond SHUTDOWN_TIMEOUT", took)
	}
}
