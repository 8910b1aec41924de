package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
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
	res, err := restClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After"), err
}

// restClient keeps a connection open for every client of a flood, as browsers and proxies do,
// rather than open one per request and run out of local ports.
var restClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

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

// TestFullHashingQueueSaysRetryAfter: over REST, registrations from many addresses at once (no
// address limit applies) that find the hashing queue full are 429 with Retry-After.
func TestFullHashingQueueSaysRetryAfter(t *testing.T) {
	h := start(t, "sqlite", map[string]string{"CUSTOMERS_TRUSTED_PROXIES": "127.0.0.0/8", "CUSTOMERS_HASH_QUEUE": "1"})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		refused []string // the Retry-After of every 429
	)
	for i := range 24 {
		wg.Go(func() {
			code, retry, err := h.restFrom(context.Background(), http.MethodPost, "/api/v1/users", fmt.Sprintf("10.1.0.%d", i+1), "",
				map[string]any{"email": uniqueEmail(), "password": "somePass123"})
			if err != nil || (code != http.StatusCreated && code != http.StatusTooManyRequests) {
				t.Errorf("registration = %d, %v; want 201 or 429", code, err)
			}
			if code == http.StatusTooManyRequests {
				mu.Lock()
				refused = append(refused, retry)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(refused) == 0 {
		t.Fatal("24 registrations at once with a hashing queue of 1: none was refused")
	}
	for _, retry := range refused {
		if retry != "1" {
			t.Errorf("429 of the full hashing queue with Retry-After %q, want 1", retry)
		}
	}
}

// TestRegistrationFloodDoesNotStarveLogins is the flood of issue 14: 64 concurrent
// registrations from one client address (the harness lifts the registration limit, so that they
// reach the hashing queue; the per-address in-flight limit refuses most of them), half of them
// giving up after 50 ms, while a legitimate user logs in over and over from another address, two
// logins at a time, until minLogins have been measured (or a minute has passed). Every
// legitimate login succeeds; the address's refusals are 429s at once; none is a 5xx. The
// dialects run one after the other, not sharing the CPUs. Without the race detector (`make
// test-flood`), which multiplies time and memory, it also bounds them: at least minLogins logins
// with a p99 under 2 s (a bound on starvation, not a benchmark), and the peak memory of the Go
// runtime (the service and the flood's own client, one process) under the customers container's
// mem_limit in docker-compose.yaml; with it (`make test`), raceLogins logins and no bounds. The full hashing queue's 429 has tests of its own
// (TestFullHashingQueueSaysRetryAfter); a flood spread over many addresses that keeps it full
// is left to the per-address limits and the queue, and is not bounded here.
func TestRegistrationFloodDoesNotStarveLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("up to a minute of flood per dialect")
	}
	memLimit := composeMemLimit(t)
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) { flood(t, dialect, memLimit) })
	}
}

// minLogins is how many legitimate logins the flood measures at least: enough that their p99
// is not simply the slowest of a handful.
const minLogins = 100

// raceLogins is how many logins the flood waits for under the race detector, where it checks
// the answers only.
const raceLogins = 10

func flood(t *testing.T, dialect string, memLimit int64) {
	h := start(t, dialect, map[string]string{"CUSTOMERS_TRUSTED_PROXIES": "127.0.0.0/8"})
	email := uniqueEmail()
	h.register(email, "legitPass123")
	runtime.GC()
	peak := watchMemory()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var (
		mu sync.Mutex
		// Status codes of the flood's registrations (0: the client gave up).
		codes   = map[int]int{}
		dropped atomic.Int64
		wg      sync.WaitGroup
	)
	registerLoop := func(i int, from string) {
		for ctx.Err() == nil {
			reqCtx, cancel := ctx, context.CancelFunc(func() {})
			if i%2 == 0 {
				reqCtx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
			}
			code, _, err := h.restFrom(reqCtx, http.MethodPost, "/api/v1/users", from, "",
				map[string]any{"email": uniqueEmail(), "password": "floodPass123"})
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				// A kept-alive connection closed under the client as it sent: reported, not a
				// failure of the service (a 5xx or a failed login is).
				dropped.Add(1)
				continue
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}
	}
	for i := range 64 {
		wg.Go(func() { registerLoop(i, "203.0.113.66") })
	}

	want := minLogins
	if raceDetector {
		want = raceLogins
	}
	var (
		latencies    []time.Duration
		failedLogins atomic.Int64
	)
	deadline := time.Now().Add(time.Minute)
	var logins sync.WaitGroup
	for range 2 {
		logins.Go(func() {
			for {
				mu.Lock()
				enough := len(latencies) >= want
				mu.Unlock()
				if enough || time.Now().After(deadline) {
					return
				}
				begin := time.Now()
				code, _, err := h.restFrom(context.Background(), http.MethodPost, "/api/v1/auth/login", "198.51.100.20", "",
					map[string]any{"email": email, "password": "legitPass123"})
				took := time.Since(begin)
				if err != nil || code != http.StatusOK {
					t.Errorf("legitimate login during the flood = %d, %v; want 200", code, err)
					failedLogins.Add(1)
				}
				mu.Lock()
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}
	logins.Wait()
	if failedLogins.Load() > 0 {
		for line := range strings.SplitSeq(h.logs.String(), "\n") {
			if strings.Contains(line, "level=ERROR") {
				t.Log(line)
			}
		}
	}
	stop()
	wg.Wait()
	heap, total := peak()

	slices.Sort(latencies)
	p99 := latencies[(len(latencies)*99+99)/100-1] // nearest rank
	t.Logf("%d logins, p50 %v, p99 %v, max %v; registrations by status %v (0: gave up); transport errors %d; peak heap %d MiB, peak memory of the Go runtime %d MiB (container limit %d MiB)",
		len(latencies), latencies[len(latencies)/2], p99, latencies[len(latencies)-1], codes, dropped.Load(), heap>>20, total>>20, memLimit>>20)
	if len(latencies) < want {
		t.Errorf("%d legitimate logins in a minute of flood, want at least %d", len(latencies), want)
	}
	if !raceDetector && p99 >= 2*time.Second {
		t.Errorf("legitimate logins' p99 = %v during the flood, want under 2 s", p99)
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("no registration from the flooding address was refused with 429 (%v)", codes)
	}
	for code, n := range codes {
		if code >= 500 {
			t.Errorf("%d registrations answered %d", n, code)
		}
	}
	if !raceDetector && total >= memLimit {
		t.Errorf("peak memory of the Go runtime = %d MiB during the flood, want under the container's %d MiB", total>>20, memLimit>>20)
	}
}

// composeMemLimit reads the customers container's mem_limit from docker-compose.yaml.
func composeMemLimit(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			MemLimit string `yaml:"mem_limit"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^(\d+)m$`).FindStringSubmatch(compose.Services["customers"].MemLimit)
	if m == nil {
		t.Fatalf("customers in docker-compose.yaml: mem_limit %q, want <n>m", compose.Services["customers"].MemLimit)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n << 20
}

// watchMemory samples the Go runtime's memory until the returned function is called, which
// returns the peaks of the live heap and of all the memory the runtime holds from the system
// (what it has mapped less what it has given back: the resident set it is responsible for).
// The service runs in the test's process, so its clients count too: a bound that holds here
// holds for the service alone.
func watchMemory() (peak func() (heap, total int64)) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	var maxHeap, maxTotal int64
	read := func() {
		metrics.Read(samples)
		maxHeap = max(maxHeap, int64(samples[0].Value.Uint64()))
		maxTotal = max(maxTotal, int64(samples[1].Value.Uint64()-samples[2].Value.Uint64()))
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		<-stopped
		return maxHeap, maxTotal
	}
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
