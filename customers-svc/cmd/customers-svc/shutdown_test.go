package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/telemetry/telemetrytest"
)

// TestGracefulShutdown stops the service while logins (each tens of milliseconds of argon2id)
// are in flight: every request sent before the stop completes with 200, and run returns within
// the shutdown timeout.
func TestGracefulShutdown(t *testing.T) {
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{
		"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR": "100000",
		// Eight logins from one address at once: more than one address may have in flight.
		"CUSTOMERS_MAX_IN_FLIGHT_PER_ADDR": "100000",
		"SHUTDOWN_TIMEOUT":                 "10s",
		// As deployed (compose: 2s): the service goes on accepting while it reports not ready.
		// Without it, a login whose connection still waits in the kernel's accept queue when
		// the listener closes is reset; with both cores hashing, the accept loop can lag the
		// client by tens of milliseconds.
		"SHUTDOWN_DRAIN_DELAY": "300ms",
	})
	s.WaitReady(t)
	base := s.URL

	const inFlight = 8
	// Two logins per demo user: the throttle counts attempts in flight, and allows five per email.
	emails := []string{"admin1@email.com", "admin2@email.com", "nonadmin3@email.com", "nonadmin4@email.com"}
	// A client of its own: no keep-alive connection left over from the readiness checks, which
	// the server may close as idle just as a request is written on it (an HTTP/1.1 race that
	// clients answer by retrying, except for POSTs). Every login dials a new connection.
	client := &http.Client{Transport: &http.Transport{}}
	var wg sync.WaitGroup
	codes := make(chan int, inFlight)
	started := make(chan struct{}, inFlight)
	for i := range inFlight {
		body, err := json.Marshal(map[string]string{"email": emails[i%len(emails)], "password": demoPassword})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/api/v1/auth/login", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			started <- struct{}{}
			res, err := client.Do(req)
			if err != nil {
				t.Log(err)
				codes <- 0
				return
			}
			_ = res.Body.Close()
			codes <- res.StatusCode
		})
	}
	for range inFlight {
		<-started
	}
	// Stop once every login has reached the service: hashing is limited to one per CPU, so
	// most of them are still queued when the stop comes.
	login := map[string]string{"grpc_method": "Login"}
	poll.Until(t, func() error {
		if n := telemetrytest.Value(telemetrytest.Scrape(t, s.Metrics), "grpc_server_started_total", login); n < inFlight {
			return fmt.Errorf("%v of %d logins started", n, inFlight)
		}
		return nil
	})
	stopAt := time.Now()
	s.Cancel()
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("a login in flight at shutdown got %d, want 200", code)
		}
	}
	s.CheckReturns(t, 15*time.Second)
	if took := time.Since(stopAt); took > 10*time.Second {
		t.Errorf("shutdown took %v, beyond SHUTDOWN_TIMEOUT", took)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := client.Do(req); err == nil {
		_ = res.Body.Close()
		t.Error("the service still answers after run returned")
	}
}
