package customerdb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/ratelimit"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// failureRow is a row of the login_failures table: one bucket's failures (or registrations) in
// its open window.
type failureRow struct {
	Bucket     string `gorm:"primaryKey"`
	Failures   int
	WindowEnds time.Time
}

func (failureRow) TableName() string { return "login_failures" }

// failures counts failures (and registrations) in login_failures, per bucket in fixed
// windows, with the upsert that cart's write limit counts with too: a bucket whose window has
// closed starts a new one, a bucket at its limit is left as it is, and the row lock of the
// update serializes concurrent attempts on one bucket, so none of them can see a stale count.
var failures = ratelimit.NewCounter("login_failures", "failures")

// errFull stops CountFailure's transaction at a bucket at its limit.
var errFull = errors.New("bucket full")

// CountFailure implements customer.Counter: the buckets are counted in one transaction, in key
// order so that concurrent attempts lock them in the same order, and rolled back when one is
// full (a soft one only when the attempt is not the first failure on every other bucket).
func (s *Store) CountFailure(ctx context.Context, now time.Time, window time.Duration, limits []customer.Limit) ([]string, time.Duration, error) {
	now = now.UTC()
	limits = slices.SortedFunc(slices.Values(limits), func(a, b customer.Limit) int { return strings.Compare(a.Key, b.Key) })
	var counted []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		counted = counted[:0]
		softFull, firstFailure := false, true
		for _, l := range limits {
			n, err := failures.Count(tx, l.Key, l.Max, window, now)
			if err != nil {
				return err
			}
			switch {
			case n == 0 && l.Soft:
				softFull = true
			case n == 0:
				return errFull
			default:
				counted = append(counted, l.Key)
				if !l.Soft && n > 1 {
					firstFailure = false
				}
			}
		}
		if softFull && !firstFailure {
			return errFull
		}
		return nil
	})
	if !errors.Is(err, errFull) {
		if err != nil {
			return nil, 0, err
		}
		return counted, 0, nil
	}
	// Full: wait until the last full bucket's window closes.
	var rows []failureRow
	keys := make([]string, len(limits))
	for i, l := range limits {
		keys[i] = l.Key
	}
	if err := s.db.WithContext(ctx).Where("bucket IN ? AND window_ends > ?", keys, now).Find(&rows).Error; err != nil {
		return nil, 0, err
	}
	wait := time.Duration(0)
	for _, r := range rows {
		for _, l := range limits {
			if l.Key == r.Bucket && r.Failures >= l.Max {
				wait = max(wait, r.WindowEnds.Sub(now))
			}
		}
	}
	// The window closed between the two statements: a second's wait is the honest answer.
	return nil, max(wait, time.Second), nil
}

// UncountFailure implements customer.Counter: one statement per bucket, in key order in one
// transaction, the order CountFailure locks them in. One UPDATE … WHERE bucket IN (…) would lock
// them in the order it finds them, and deadlock with a concurrent CountFailure of the same
// buckets (one user logging in on two devices at once, say).
func (s *Store) UncountFailure(ctx context.Context, now time.Time, keys []string) error {
	keys = slices.Sorted(slices.Values(keys))
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, k := range keys {
			if err := tx.Model(&failureRow{}).
				Where("bucket = ? AND failures > 0 AND window_ends > ?", k, now.UTC()).
				Update("failures", gorm.Expr("failures - 1")).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// ClearFailures implements customer.Counter.
func (s *Store) ClearFailures(ctx context.Context, key string) error {
	return s.db.WithContext(ctx).Where("bucket = ?", key).Delete(&failureRow{}).Error
}

// deleteClosedWindowsSQL deletes the buckets whose window has closed but those a login is
// counting on right now (SKIP LOCKED): waiting for those, in the order the scan meets them,
// could deadlock with the login's transaction, which locks its buckets in key order. A skipped
// bucket is renewed by that login or deleted by the next sweep. PostgreSQL; SQLite runs one
// writing transaction at a time. Argument: now.
const deleteClosedWindowsSQL = `DELETE FROM login_failures WHERE bucket IN
(SELECT bucket FROM login_failures WHERE window_ends <= ? FOR UPDATE SKIP LOCKED)`

// DeleteClosedWindows implements customer.Counter.
func (s *Store) DeleteClosedWindows(ctx context.Context, now time.Time) error {
	db := s.db.WithContext(ctx)
	if database.Dialect(db) == "postgres" {
		return db.Exec(deleteClosedWindowsSQL, now.UTC()).Error
	}
	return db.Where("window_ends <= ?", now.UTC()).Delete(&failureRow{}).Error
}

var _ customer.Counter = (*Store)(nil)
