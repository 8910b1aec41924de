package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/database/dbtest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// restFrom sends a REST request as if through a reverse proxy on loopback for the client at
// forwardedFor, and returns its status and Retry-After. ctx bounds it (a client that gives
// up).
func (h *harness) restFrom(ctx context.Context, method, path, forwardedFor, token string, body any) (int, string, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, method, h.rest+path, bytes.NewReader(buf))
	if err != nil {
		return 0, "", err
	}
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	_ = res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After"), nil
}

// TestLoginThrottleBehindTrustedProxy: behind a trusted proxy, each client counts on its own
// address (from X-Forwarded-For), so an attacker's failures for a victim's email lock out the
// attacker, never the victim; gRPC callers' forwarding metadata is still not believed.
func TestLoginThrottleBehindTrustedProxy(t *testing.T) {
	h := start(t, "sqlite", map[string]string{
		"CUSTOMERS_TRUSTED_PROXIES":              "127.0.0.0/8",
		"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR":  "3",
		"CUSTOMERS_LOGIN_MAX_FAILURES_PER_EMAIL": "3",
	})
	email := uniqueEmail()
	h.register(email, "rightPass123")
	ctx := context.Background()
	login := func(from, password string) int {
		code, _, err := h.restFrom(ctx, http.MethodPost, "/api/v1/auth/login", from, "", map[string]any{"email": email, "password": password})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	for i := range 3 {
		if code := login("203.0.113.1", "wrongPass123"); code != http.StatusUnauthorized {
			t.Fatalf("attacker's failure %d = %d, want 401", i+1, code)
		}
	}
	if code := login("203.0.113.1", "rightPass123"); code != http.StatusTooManyRequests {
		t.Errorf("attacker's address after its limit = %d, want 429", code)
	}
	if code := login("198.51.100.7", "rightPass123"); code != http.StatusOK {
		t.Errorf("victim from another address behind the proxy = %d, want 200", code)
	}
	// gRPC: forwarding metadata is not believed; failures count on the connection's address.
	email = uniqueEmail()
	h.register(email, "rightPass123")
	md := metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", "198.51.100.8")
	for range 3 {
		_, err := h.auth.Login(md, &customersv1.LoginRequest{Email: email, Password: "wrongPass123"})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("gRPC failure = %v, want Unauthenticated", err)
		}
	}
	if _, err := h.auth.Login(md, &customersv1.LoginRequest{Email: email, Password: "rightPass123"}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC after 3 failures from its connection's address = %v, want ResourceExhausted", err)
	}
	if code := login("198.51.100.8", "rightPass123"); code != http.StatusOK {
		t.Errorf("REST client whose address gRPC metadata claimed = %d, want 200 (metadata moved nobody)", code)
	}
}

// TestRegistrationsLimitedPerAddress: registrations from one client address beyond the limit
// are 429 with Retry-After, and cost no hashing; other addresses register.
func TestRegistrationsLimitedPerAddress(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, map[string]string{
			"CUSTOMERS_TRUSTED_PROXIES":       "127.0.0.0/8",
			"CUSTOMERS_REGISTER_MAX_PER_ADDR": "3",
		})
		register := func(from string) (int, string) {
			code, retry, err := h.restFrom(context.Background(), http.MethodPost, "/api/v1/users", from, "",
				map[string]any{"email": uniqueEmail(), "password": "somePass123"})
			if err != nil {
				t.Fatal(err)
			}
			return code, retry
		}
		for i := range 3 {
			if code, _ := register("203.0.113.9"); code != http.StatusCreated {
				t.Fatalf("registration %d = %d, want 201", i+1, code)
			}
		}
		if code, retry := register("203.0.113.9"); code != http.StatusTooManyRequests || retry == "" {
			t.Errorf("fourth registration = %d with Retry-After %q, want 429 with one", code, retry)
		}
		if code, _ := register("198.51.100.9"); code != http.StatusCreated {
			t.Errorf("registration from another address = %d, want 201", code)
		}
	})
}

// TestRegistrationFloodDoesNotStarveLogins is the flood of issue 14: from one client address,
// 64 concurrent registrations for a few seconds (half of them giving up after 50 ms), while a
// legitimate user logs in from another address, with the service's default limits. Every
// legitimate login succeeds; the excess registrations are refused with 429 at once rather than
// queued without bound; none is a 5xx. The logins' p99 must be under 2 s (a bound on
// starvation, not a benchmark), checked without the race detector (`make test-flood`): with it,
// every request costs several times its CPU on a machine the flood already saturates, and the
// bound would measure the detector.
func TestRegistrationFloodDoesNotStarveLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of flood")
	}
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, map[string]string{
			"CUSTOMERS_TRUSTED_PROXIES":       "127.0.0.0/8",
			"CUSTOMERS_REGISTER_MAX_PER_ADDR": "10",
		})
		email := uniqueEmail()
		h.register(email, "legitPass123")

		ctx, stop := context.WithTimeout(context.Background(), 3*time.Second)
		defer stop()
		var (
			mu    sync.Mutex
			codes = map[int]int{} // 0: the client gave up
			wg    sync.WaitGroup
		)
		for i := range 64 {
			wg.Go(func() {
				for ctx.Err() == nil {
					reqCtx, cancel := ctx, context.CancelFunc(func() {})
					if i%2 == 0 {
						reqCtx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					}
					code, _, err := h.restFrom(reqCtx, http.MethodPost, "/api/v1/users", "203.0.113.66", "",
						map[string]any{"email": uniqueEmail(), "password": "floodPass123"})
					cancel()
					if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						t.Error(err)
						return
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			})
		}
		var latencies []time.Duration
		for ctx.Err() == nil {
			start := time.Now()
			code, _, err := h.restFrom(context.Background(), http.MethodPost, "/api/v1/auth/login", "198.51.100.20", "",
				map[string]any{"email": email, "password": "legitPass123"})
			latencies = append(latencies, time.Since(start))
			if err != nil || code != http.StatusOK {
				t.Errorf("legitimate login during the flood = %d, %v; want 200", code, err)
			}
		}
		wg.Wait()
		slices.Sort(latencies)
		p99 := latencies[(len(latencies)*99)/100]
		t.Logf("%d logins, p99 %v; registrations by status %v (0: gave up)", len(latencies), p99, codes)
		if p99 >= 2*time.Second && !raceDetector {
			t.Errorf("legitimate logins' p99 = %v during the flood, want under 2 s", p99)
		}
		if codes[http.StatusTooManyRequests] == 0 {
			t.Errorf("no registration was refused with 429 (%v)", codes)
		}
		for code, n := range codes {
			if code >= 500 {
				t.Errorf("%d registrations answered %d", n, code)
			}
		}
	})
}

// TestOwnAccountChangesNeedThePassword: over REST, changing one's own email or deleting one's
// own account without the current password is a 400 naming current_password; with it, the
// email changes and every other token of the user stops working.
func TestOwnAccountChangesNeedThePassword(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, nil)
		email := uniqueEmail()
		h.register(email, "ownerPass123")
		tok, other := h.login(email, "ownerPass123"), h.login(email, "ownerPass123")
		if res := h.do(http.MethodPatch, "/api/v1/users/me", tok, map[string]any{"email": uniqueEmail()}); res.Code != http.StatusBadRequest {
			t.Errorf("email change without the password = %d, want 400", res.Code)
		}
		if res := h.do(http.MethodDelete, "/api/v1/users/me", tok, nil); res.Code != http.StatusBadRequest {
			t.Errorf("deletion without the password = %d, want 400", res.Code)
		}
		if res := h.do(http.MethodDelete, "/api/v1/users/me", tok, map[string]any{"current_password": "wrongPass123"}); res.Code != http.StatusBadRequest {
			t.Errorf("deletion with a wrong password = %d, want 400", res.Code)
		}
		if res := h.do(http.MethodPatch, "/api/v1/users/me", tok, map[string]any{"email": uniqueEmail(), "current_password": "ownerPass123"}); res.Code != http.StatusOK {
			t.Fatalf("email change with the password = %d %s, want 200", res.Code, res.Raw)
		}
		if res := h.do(http.MethodGet, "/api/v1/users/me", tok, nil); res.Code != http.StatusOK {
			t.Errorf("the token that changed the email = %d, want 200", res.Code)
		}
		if res := h.do(http.MethodGet, "/api/v1/users/me", other, nil); res.Code != http.StatusUnauthorized {
			t.Errorf("another token after the email change = %d, want 401", res.Code)
		}
	})
}

// TestLastAdminCannotBeRemoved: with one admin left, demoting or deleting it is a 409 and
// changes nothing.
func TestLastAdminCannotBeRemoved(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		h := start(t, dialect, nil)
		admin1 := h.login("admin1@email.com", demoPassword)
		admin2 := h.login("admin2@email.com", demoPassword)
		me := h.do(http.MethodGet, "/api/v1/users/me", admin2, nil)
		var a2 struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(me.Raw, &a2); err != nil {
			t.Fatal(err)
		}
		if res := h.do(http.MethodDelete, "/api/v1/users/"+a2.ID, admin1, nil); res.Code != http.StatusNoContent {
			t.Fatalf("deleting one of two admins = %d %s, want 204", res.Code, res.Raw)
		}
		if res := h.do(http.MethodPatch, "/api/v1/users/me", admin1, map[string]any{"is_admin": false}); res.Code != http.StatusConflict {
			t.Errorf("demoting the last admin = %d %s, want 409", res.Code, res.Raw)
		}
		if res := h.do(http.MethodDelete, "/api/v1/users/me", admin1, map[string]any{"current_password": demoPassword}); res.Code != http.StatusConflict {
			t.Errorf("deleting the last admin = %d %s, want 409", res.Code, res.Raw)
		}
		if res := h.do(http.MethodGet, "/api/v1/users?page_size=1", admin1, nil); res.Code != http.StatusOK {
			t.Errorf("the last admin after the attempts = %d, want still an admin (200)", res.Code)
		}
	})
}
