package idempotency_test

import (
	"fmt"
	"slices"
	"strings"
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
	eachStoreWith(t, idempotency.StoreOptions{}, f)
}

// eachStoreWith is eachStore with a store of opts (and the test's clock).
func eachStoreWith(t *testing.T, opts idempotency.StoreOptions, f func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB)) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		db := dbtest.Open(t, dialect)
		if err := database.Migrate(t.Context(), db, "test", []*gormigrate.Migration{
			idempotency.CreateTable("test_create_idempotency_keys"), idempotency.AddWritten("test_idempotency_keys_written"),
			idempotency.AddReference("test_idempotency_keys_reference"), idempotency.AddCallerIndex("test_idempotency_keys_caller_index"),
		}); err != nil {
			t.Fatal(err)
		}
		c := newClock()
		o := opts // the dialects run in parallel
		o.Now = c.Now
		f(t, idempotency.NewStore(db, o), c, db)
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
		if err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if left := keys(t, db); left != 1 {
			t.Errorf("%d keys left, want 1 (old, claimed again)", left)
		}

		// Claim never sweeps: that is the background's job (Sweep), not a request's.
		c.advance(2 * idempotency.DefaultTTL)
		claim(t, s, "bob", "any", "fp", idempotency.Claimed)
		if left := keys(t, db); left != 2 {
			t.Errorf("%d keys left after a Claim, want 2 (the expired one is the sweep's)", left)
		}
	})
}

// keys counts the rows of the keys' table.
func keys(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Table(idempotency.Table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStoreCapsLiveKeys claims new keys for one caller until the cap: the next new key is Full,
// with the wait until the oldest key expires, and adds no row; the caller's keys still answer;
// another caller is not held back; and once the oldest key expires a new one is accepted, but
// the expired key itself only as a new key under the cap.
func TestStoreCapsLiveKeys(t *testing.T) {
	const maxKeys = 3
	eachStoreWith(t, idempotency.StoreOptions{MaxKeys: maxKeys}, func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB) {
		ctx := t.Context()
		start := c.Now()
		for i := range maxKeys {
			k := claim(t, s, "alice", fmt.Sprint("k", i), "fp", idempotency.Claimed)
			if _, err := s.Complete(ctx, "alice", fmt.Sprint("k", i), k.Token, []byte(fmt.Sprint("answer ", i)), nil); err != nil {
				t.Fatal(err)
			}
			c.advance(time.Hour)
		}
		for range 3 {
			full := claim(t, s, "alice", "one too many", "fp", idempotency.Full)
			if want := start.Add(idempotency.DefaultTTL).Sub(c.Now()); full.RetryAfter != want {
				t.Errorf("RetryAfter = %v, want %v (when k0 expires)", full.RetryAfter, want)
			}
		}
		if n := keys(t, db); n != maxKeys {
			t.Errorf("%d keys after claims at the cap, want %d", n, maxKeys)
		}
		// The caller's keys answer as before at the cap.
		if got := claim(t, s, "alice", "k0", "fp", idempotency.Done); string(got.Response) != "answer 0" {
			t.Errorf("replay at the cap = %q, want %q", got.Response, "answer 0")
		}
		claim(t, s, "alice", "k1", "other fp", idempotency.Mismatch)
		claim(t, s, "bob", "k0", "fp", idempotency.Claimed)

		// k0 expires: one new key fits, and k0 itself is then a new key over the cap.
		c.set(start.Add(idempotency.DefaultTTL))
		claim(t, s, "alice", "one too many", "fp", idempotency.Claimed)
		claim(t, s, "alice", "k0", "fp", idempotency.Full)
		claim(t, s, "alice", "another", "fp", idempotency.Full)
	})
}

// TestStoreCapHoldsAcrossReplicas claims new keys of one caller from many goroutines at once, on
// separate stores as on separate replicas: exactly the cap of them are claimed.
func TestStoreCapHoldsAcrossReplicas(t *testing.T) {
	const maxKeys = 5
	eachStoreWith(t, idempotency.StoreOptions{MaxKeys: maxKeys}, func(t *testing.T, _ *idempotency.Store, c *clock, db *gorm.DB) {
		const n = 16
		var claimed atomic.Int32
		var wg sync.WaitGroup
		for i := range n {
			s := idempotency.NewStore(db, idempotency.StoreOptions{MaxKeys: maxKeys, Now: c.Now})
			wg.Go(func() {
				got, err := s.Claim(t.Context(), "alice", fmt.Sprint("k", i), "fp")
				if err != nil {
					t.Error(err)
					return
				}
				switch got.Outcome {
				case idempotency.Claimed:
					claimed.Add(1)
				case idempotency.Full:
				default:
					t.Errorf("Claim = %v, want Claimed or Full", got.Outcome)
				}
			})
		}
		wg.Wait()
		if got := claimed.Load(); got != maxKeys {
			t.Errorf("%d new keys claimed at once, want the cap, %d", got, maxKeys)
		}
		if got := keys(t, db); got != maxKeys {
			t.Errorf("%d keys, want %d", got, maxKeys)
		}
	})
}

// TestStoreSweepsInBatches sweeps more expired keys than a batch holds: each transaction
// deletes at most a batch, the sweep goes on until none is left, and the live keys stay.
func TestStoreSweepsInBatches(t *testing.T) {
	const batch = 3
	eachStoreWith(t, idempotency.StoreOptions{SweepBatch: batch}, func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB) {
		for i := range 7 {
			claim(t, s, fmt.Sprint("user", i), "k", "fp", idempotency.Claimed)
		}
		c.advance(idempotency.DefaultTTL)
		claim(t, s, "alice", "live", "fp", idempotency.Claimed)
		var deleted []int64
		err := db.Callback().Raw().After("gorm:raw").Register("test:count_sweeps", func(tx *gorm.DB) {
			if strings.HasPrefix(tx.Statement.SQL.String(), "DELETE FROM "+idempotency.Table) {
				deleted = append(deleted, tx.RowsAffected)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if want := []int64{3, 3, 1}; !slices.Equal(deleted, want) {
			t.Errorf("the sweep's statements deleted %v keys, want %v", deleted, want)
		}
		if n := keys(t, db); n != 1 {
			t.Errorf("%d keys left, want 1 (the live one)", n)
		}
	})
}

// TestStoreSweepsOneReplicaAtATime: while one replica sweeps (holds the sweep's lock), another
// replica's sweep skips its turn and deletes nothing; its next sweep deletes. PostgreSQL: on
// SQLite writers take turns anyway.
func TestStoreSweepsOneReplicaAtATime(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB) {
		if database.Dialect(db) != "postgres" {
			t.Skip("SQLite's writers take turns anyway")
		}
		ctx := t.Context()
		claim(t, s, "alice", "old", "fp", idempotency.Claimed)
		c.advance(idempotency.DefaultTTL)
		sweeping, done := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		var ranA bool
		var errA error
		wg.Go(func() {
			ranA, errA = database.Exclusively(ctx, db, idempotency.SweepLock, func(*gorm.DB) error {
				close(sweeping)
				<-done
				return nil
			})
		})
		<-sweeping
		if err := s.Sweep(ctx); err != nil {
			t.Fatalf("a sweep during another's: %v", err)
		}
		if n := keys(t, db); n != 1 {
			t.Errorf("%d keys after a sweep during another's, want 1 (it skips its turn)", n)
		}
		close(done)
		wg.Wait()
		if !ranA || errA != nil {
			t.Fatalf("the other sweep ran %v, error %v; want it to run", ranA, errA)
		}
		if err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if n := keys(t, db); n != 0 {
			t.Errorf("%d keys after the next sweep, want 0", n)
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
