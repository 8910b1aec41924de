package ratelimit_test

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
	"github.com/acme/shop/foundation/ratelimit"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// eachDB runs f on a fresh database of every dialect with the Limiter's table, and a clock.
func eachDB(t *testing.T, f func(t *testing.T, db *gorm.DB, now *atomic.Pointer[time.Time])) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		db := dbtest.Open(t, dialect)
		if err := database.Migrate(t.Context(), db, "test", []*gormigrate.Migration{ratelimit.CreateTable("test_create_rate_limits")}); err != nil {
			t.Fatal(err)
		}
		var now atomic.Pointer[time.Time]
		now.Store(&t0)
		f(t, db, &now)
	})
}

func limiter(t *testing.T, db *gorm.DB, now *atomic.Pointer[time.Time], opts ratelimit.Options) *ratelimit.Limiter {
	t.Helper()
	opts.Now = func() time.Time { return *now.Load() }
	l, err := ratelimit.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func advance(now *atomic.Pointer[time.Time], d time.Duration) {
	next := now.Load().Add(d)
	now.Store(&next)
}

// TestTake counts a key's uses on two limiters, as on two replicas, against one limit: past it,
// Take waits until the window that began at the first use closes; other keys are counted apart;
// and the next window starts afresh.
func TestTake(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB, now *atomic.Pointer[time.Time]) {
		opts := ratelimit.Options{Limit: 3, Window: time.Minute}
		replicas := []*ratelimit.Limiter{limiter(t, db, now, opts), limiter(t, db, now, opts)}
		take := func(i int, key string) time.Duration {
			t.Helper()
			wait, err := replicas[i%2].Take(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			return wait
		}
		for i := range 3 {
			if wait := take(i, "alice"); wait != 0 {
				t.Fatalf("use %d = wait %v, want none", i+1, wait)
			}
			advance(now, 10*time.Second)
		}
		for i := range 2 {
			if wait := take(i, "alice"); wait != 30*time.Second {
				t.Errorf("fourth use on replica %d = wait %v, want 30s (until the window closes)", i+1, wait)
			}
		}
		if wait := take(0, "bob"); wait != 0 {
			t.Errorf("another key = wait %v, want none", wait)
		}
		advance(now, 30*time.Second)
		if wait := take(1, "alice"); wait != 0 {
			t.Errorf("first use of the next window = wait %v, want none", wait)
		}
	})
}

// TestTakeHoldsUnderConcurrency takes one key from many goroutines on separate limiters at once:
// exactly the limit of them pass.
func TestTakeHoldsUnderConcurrency(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB, now *atomic.Pointer[time.Time]) {
		const limit = 5
		var passed atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			l := limiter(t, db, now, ratelimit.Options{Limit: limit, Window: time.Hour})
			wg.Go(func() {
				wait, err := l.Take(t.Context(), "alice")
				if err != nil {
					t.Error(err)
				} else if wait == 0 {
					passed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := passed.Load(); n != limit {
			t.Errorf("%d uses passed at once, want %d", n, limit)
		}
	})
}

// TestSweepInBatches deletes the closed windows, at most a batch per statement, and keeps the
// open ones.
func TestSweepInBatches(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB, now *atomic.Pointer[time.Time]) {
		l := limiter(t, db, now, ratelimit.Options{Limit: 1, Window: time.Minute, SweepBatch: 2})
		for i := range 5 {
			if _, err := l.Take(t.Context(), fmt.Sprint("closed", i)); err != nil {
				t.Fatal(err)
			}
		}
		advance(now, time.Minute)
		if _, err := l.Take(t.Context(), "open"); err != nil {
			t.Fatal(err)
		}
		var deleted []int64
		err := db.Callback().Raw().After("gorm:raw").Register("test:count_sweeps", func(tx *gorm.DB) {
			if strings.HasPrefix(tx.Statement.SQL.String(), "DELETE FROM "+ratelimit.Table) {
				deleted = append(deleted, tx.RowsAffected)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if want := []int64{2, 2, 1}; !slices.Equal(deleted, want) {
			t.Errorf("the sweep's statements deleted %v windows, want %v", deleted, want)
		}
		var left []string
		if err := db.Table(ratelimit.Table).Pluck("bucket", &left).Error; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(left, []string{"open"}) {
			t.Errorf("windows left %v, want [open]", left)
		}
	})
}
