package customerdb_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
)

// limits are small limits for the store's throttle tests.
func limits(perEmailAddr, perAddr, perEmail int) customer.Limits {
	return customer.Limits{
		Window: time.Minute, PerEmailAddr: perEmailAddr, PerAddr: perAddr, PerEmail: perEmail,
		RegisterWindow: time.Hour, RegisterPerAddr: 2,
	}
}

// TestThrottleWindows: failures count per bucket in a fixed window from the first failure;
// a full bucket refuses with the time left in its window and changes nothing; a success clears
// the pair's bucket and takes the address's count back; a closed window starts afresh and is
// swept.
func TestThrottleWindows(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		th := customer.NewThrottle(s, limits(3, 5, 100))
		for i := range 3 {
			if _, err := th.Begin(ctx, dbtest.T0.Add(time.Duration(i)*time.Second), "ada@example.com", "10.0.0.1"); err != nil {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		_, err := th.Begin(ctx, dbtest.T0.Add(20*time.Second), "ada@example.com", "10.0.0.1")
		var te *customer.ThrottledError
		if !errors.As(err, &te) || te.RetryAfter != 40*time.Second {
			t.Fatalf("fourth failure = %v, want ThrottledError with 40 s left in the window", err)
		}
		// Five attempts from another address pass; the refused one counted nothing against it.
		for i := range 5 {
			a, err := th.Begin(ctx, dbtest.T0.Add(21*time.Second), fmt.Sprintf("user%d@example.com", i), "10.0.0.2")
			if err != nil {
				t.Fatalf("attempt %d from 10.0.0.2: %v", i+1, err)
			}
			if i == 4 {
				// A success gives its count back, so the address may try once more.
				if err := a.Succeed(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := th.Begin(ctx, dbtest.T0.Add(22*time.Second), "bob@example.com", "10.0.0.2"); err != nil {
			t.Errorf("attempt after a success from 10.0.0.2: %v", err)
		}
		if _, err := th.Begin(ctx, dbtest.T0.Add(22*time.Second), "eve@example.com", "10.0.0.2"); err == nil {
			t.Error("sixth failure from 10.0.0.2 admitted, want throttled")
		}
		// The window closes a minute after the first failure.
		a, err := th.Begin(ctx, dbtest.T0.Add(time.Minute), "ada@example.com", "10.0.0.1")
		if err != nil {
			t.Fatalf("after the window: %v", err)
		}
		if err := a.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestThrottleNoLockout: failures for one email from many addresses fill its limit across
// addresses, which then refuses the addresses that failed but admits one that has not; a
// clean address's success leaves the attackers' count as it was.
func TestThrottleNoLockout(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		th := customer.NewThrottle(s, limits(5, 20, 4))
		for i := range 4 {
			if _, err := th.Begin(ctx, dbtest.T0, "ada@example.com", fmt.Sprintf("203.0.113.%d", i)); err != nil {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		var te *customer.ThrottledError
		if _, err := th.Begin(ctx, dbtest.T0, "ada@example.com", "203.0.113.0"); !errors.As(err, &te) {
			t.Errorf("an address that failed, past the email's limit = %v, want ThrottledError", err)
		}
		a, err := th.Begin(ctx, dbtest.T0, "ada@example.com", "198.51.100.1")
		if err != nil {
			t.Fatalf("a clean address past the email's limit = %v, want admitted", err)
		}
		if err := a.Succeed(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := th.Begin(ctx, dbtest.T0, "ada@example.com", "203.0.113.1"); !errors.As(err, &te) {
			t.Errorf("after a clean address's success, an attacker's address = %v, want still throttled", err)
		}
		// Registrations: two per address per window.
		for i := range 3 {
			err := th.BeginRegistration(ctx, dbtest.T0, "10.9.9.9")
			if got := errors.As(err, &te); got != (i == 2) {
				t.Errorf("registration %d: %v", i+1, err)
			}
		}
	})
}

// TestThrottleAcrossReplicas: many attempts at once, through several Throttles on one database
// as on several replicas, admit exactly the limit.
func TestThrottleAcrossReplicas(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		replicas := []*customer.Throttle{
			customer.NewThrottle(s, limits(5, 1000, 1000)),
			customer.NewThrottle(s, limits(5, 1000, 1000)),
			customer.NewThrottle(s, limits(5, 1000, 1000)),
		}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				a, err := replicas[i%len(replicas)].Begin(t.Context(), dbtest.T0, "ada@example.com", "10.0.1.1")
				if err == nil && a != nil {
					admitted.Add(1)
				} else if te := (*customer.ThrottledError)(nil); !errors.As(err, &te) {
					t.Errorf("attempt %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != 5 {
			t.Errorf("%d parallel attempts admitted across 3 replicas, want exactly 5", n)
		}
	})
}

// TestThrottleConcurrentLoginsDoNotDeadlock: one user logging in from one address on several
// devices at once, every login a success. Each counts its attempt on the same buckets and then
// takes it back; the buckets must be locked in one order by both, or PostgreSQL finds a
// deadlock and one login fails (the flood test met it: a single UPDATE … IN took the buckets
// back in the order it found them).
func TestThrottleConcurrentLoginsDoNotDeadlock(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		th := customer.NewThrottle(s, limits(1000, 1000, 1000))
		var wg sync.WaitGroup
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			// A sweep that finds every bucket's window closed, racing the logins for the rows.
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.DeleteClosedWindows(t.Context(), dbtest.T0.Add(time.Hour)); err != nil {
					t.Errorf("sweep: %v", err)
					return
				}
			}
		}()
		for range 16 {
			wg.Go(func() {
				for range 20 {
					a, err := th.Begin(t.Context(), dbtest.T0, "ada@example.com", "10.0.2.1")
					if err == nil {
						err = a.Succeed(t.Context())
					}
					if err != nil {
						t.Errorf("login: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		<-done
	})
}
