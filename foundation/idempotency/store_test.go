package idempotency_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/idempotency"
)

// clock is a settable clock for the stores under test.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC))
	return c
}
func (c *clock) set(t time.Time)         { c.now.Store(t.UnixNano()) }
func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.set(c.Now().Add(d)) }

// eachStore runs f with a store of its own on a fresh database of every dialect.
func eachStore(t *testing.T, f func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB)) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		db := dbtest.Open(t, dialect)
		if err := database.Migrate(t.Context(), db, "test", []*gormigrate.Migration{
			idempotency.CreateTable("test_create_idempotency_keys"), idempotency.AddWritten("test_idempotency_keys_written"),
			idempotency.AddReference("test_idempotency_keys_reference"),
		}); err != nil {
			t.Fatal(err)
		}
		c := newClock()
		f(t, idempotency.NewStore(db, idempotency.StoreOptions{Now: c.Now}), c, db)
	})
}

func claim(t *testing.T, s *idempotency.Store, caller, key, fp string, want idempotency.Outcome) idempotency.Claim {
	t.Helper()
	got, err := s.Claim(t.Context(), caller, key, fp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != want {
		t.Fatalf("Claim(%s, %s, %s) = %v, want %v", caller, key, fp, got.Outcome, want)
	}
	return got
}

func TestStoreLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, c *clock, _ *gorm.DB) {
		ctx := t.Context()
		first := claim(t, s, "alice", "k1", "fp-a", idempotency.Claimed)
		claim(t, s, "alice", "k1", "fp-a", idempotency.Running)
		claim(t, s, "alice", "k1", "fp-b", idempotency.Mismatch)
		// Another caller's key of the same name is another key.
		bob := claim(t, s, "bob", "k1", "fp-b", idempotency.Claimed)

		if held, err := s.Complete(ctx, "alice", "k1", first.Token, []byte("answer"), nil); err != nil || !held {
			t.Fatalf("Complete = %t, %v; want true, nil", held, err)
		}
		done := claim(t, s, "alice", "k1", "fp-a", idempotency.Done)
		if string(done.Response) != "answer" || done.Status != nil {
			t.Errorf("replay = %q, %v; want %q, nil", done.Response, done.Status, "answer")
		}
		claim(t, s, "alice", "k1", "fp-b", idempotency.Mismatch)
		// A completed key cannot be completed again.
		if held, err := s.Complete(ctx, "alice", "k1", first.Token, []byte("other"), nil); err != nil || held {
			t.Errorf("second Complete = %t, %v; want false, nil", held, err)
		}
		if done := claim(t, s, "alice", "k1", "fp-a", idempotency.Done); string(done.Response) != "answer" {
			t.Errorf("replay after a second Complete = %q, want %q", done.Response, "answer")
		}

		// An error is an answer too.
		if held, err := s.Complete(ctx, "bob", "k1", bob.Token, nil, []byte("status")); err != nil || !held {
			t.Fatalf("Complete = %t, %v", held, err)
		}
		done = claim(t, s, "bob", "k1", "fp-b", idempotency.Done)
		if done.Response != nil || string(done.Status) != "status" {
			t.Errorf("replay = %q, %q; want nil, %q", done.Response, done.Status, "status")
		}
	})
}

func TestStoreTakesOverAStaleClaim(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, c *clock, _ *gorm.DB) {
		stale := claim(t, s, "alice", "k", "fp", idempotency.Claimed)
		c.advance(idempotency.DefaultLockTimeout - time.Second)
		claim(t, s, "alice", "k", "fp", idempotency.Running)
		c.advance(2 * time.Second)
		fresh := claim(t, s, "alice", "k", "fp", idempotency.Claimed)
		if fresh.Token == stale.Token {
			t.Fatal("the takeover kept the stale token")
		}
		// The request that lost its key can no longer answer for it.
		if held, err := s.Complete(t.Context(), "alice", "k", stale.Token, []byte("late"), nil); err != nil || held {
			t.Errorf("stale Complete = %t, %v; want false, nil", held, err)
		}
		claim(t, s, "alice", "k", "fp", idempotency.Running)
		if held, err := s.Complete(t.Context(), "alice", "k", fresh.Token, []byte("on time"), nil); err != nil || !held {
			t.Errorf("Complete = %t, %v; want true, nil", held, err)
		}
		if got := claim(t, s, "alice", "k", "fp", idempotency.Done); string(got.Response) != "on time" {
			t.Errorf("replay = %q, want %q", got.Response, "on time")
		}
	})
}

func TestStoreExpiresAndSweepsKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB) {
		ctx := t.Context()
		old := claim(t, s, "alice", "old", "fp", idempotency.Claimed)
		if _, err := s.Complete(ctx, "alice", "old", old.Token, []byte("old answer"), nil); err != nil {
			t.Fatal(err)
		}
		c.advance(idempotency.DefaultTTL - time.Minute)
		young := claim(t, s, "alice", "young", "fp", idempotency.Claimed)
		if _, err := s.Complete(ctx, "alice", "young", young.Token, []byte("young answer"), nil); err != nil {
			t.Fatal(err)
		}
		claim(t, s, "alice", "old", "fp", idempotency.Done)

		// Past its 24 hours, a key is new again, for any request, even before it is swept.
		c.advance(time.Minute)
		claim(t, s, "alice", "old", "other fp", idempotency.Claimed)

		// The sweep deletes exactly the keys older than 24 hours.
		c.advance(idempotency.DefaultTTL - time.Minute)
		n, err := s.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("swept %d keys, want 1 (young)", n)
		}
		var left int64
		if err := db.Table(idempotency.Table).Count(&left).Error; err != nil {
			t.Fatal(err)
		}
		if left != 1 {
			t.Errorf("%d keys left, want 1 (old, claimed again)", left)
		}

		// Claim sweeps by itself, at most once a minute.
		c.advance(2 * idempotency.DefaultTTL)
		claim(t, s, "bob", "any", "fp", idempotency.Claimed)
		if err := db.Table(idempotency.Table).Count(&left).Error; err != nil {
			t.Fatal(err)
		}
		if left != 1 {
			t.Errorf("%d keys left after Claim's sweep, want 1 (bob's)", left)
		}
	})
}

// TestStoreClaimIsAtomic claims one key from many goroutines, on separate stores as on
// separate replicas: exactly one claims it.
func TestStoreClaimIsAtomic(t *testing.T) {
	eachStore(t, func(t *testing.T, _ *idempotency.Store, c *clock, db *gorm.DB) {
		const n = 12
		var claimed atomic.Int32
		var wg sync.WaitGroup
		for range n {
			s := idempotency.NewStore(db, idempotency.StoreOptions{Now: c.Now})
			wg.Go(func() {
				got, err := s.Claim(t.Context(), "alice", "k", "fp")
				if err != nil {
					t.Error(err)
					return
				}
				switch got.Outcome {
				case idempotency.Claimed:
					claimed.Add(1)
				case idempotency.Running:
				default:
					t.Errorf("Claim = %v, want Claimed or Running", got.Outcome)
				}
			})
		}
		wg.Wait()
		if got := claimed.Load(); got != 1 {
			t.Errorf("%d claims succeeded, want 1", got)
		}
	})
}
