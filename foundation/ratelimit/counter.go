package ratelimit

import (
	"strings"
	"time"

	"gorm.io/gorm"
)

// Counter is a table of fixed-window counters: one row per bucket (its primary key, the
// column bucket), the count of its open window in a column of the table's choosing, and when
// that window ends (window_ends). Both services count in one: cart's Limiter in Table, and
// customers' login throttle in its own table of failures.
type Counter struct {
	table    string
	countSQL string
}

// countSQL adds one to a bucket in one statement and returns the bucket's count: a bucket whose
// window has closed starts a new one; a bucket at its limit in its open window is left as it
// is, and the statement then returns no row. The row lock of the update serializes concurrent
// counts of one bucket, so none of them can see a stale count. PostgreSQL and SQLite take the
// same SQL. TABLE and COUNT are the Counter's names. Arguments: bucket, new window end, now,
// now, now, limit.
const countSQL = `INSERT INTO TABLE (bucket, COUNT, window_ends) VALUES (?, 1, ?)
ON CONFLICT (bucket) DO UPDATE SET
	COUNT = CASE WHEN TABLE.window_ends <= ? THEN 1 ELSE TABLE.COUNT + 1 END,
	window_ends = CASE WHEN TABLE.window_ends <= ? THEN excluded.window_ends ELSE TABLE.window_ends END
WHERE TABLE.window_ends <= ? OR TABLE.COUNT < ?
RETURNING COUNT`

// NewCounter returns the Counter of table, whose column count holds the counts. Both are the
// program's own names, never input.
func NewCounter(table, count string) Counter {
	return Counter{table: table, countSQL: strings.NewReplacer("TABLE", table, "COUNT", count).Replace(countSQL)}
}

// Count adds one to bucket in tx, in a window of length window that starts now if the bucket
// has none open, and returns the bucket's count in its window; or, when the bucket already has
// limit in its open window, it changes nothing and returns 0.
func (c Counter) Count(tx *gorm.DB, bucket string, limit int, window time.Duration, now time.Time) (int, error) {
	now = now.UTC()
	var counts []int
	if err := tx.Raw(c.countSQL, bucket, now.Add(window), now, now, now, limit).Scan(&counts).Error; err != nil {
		return 0, err
	}
	if len(counts) == 0 {
		return 0, nil
	}
	return counts[0], nil
}

// Wait returns how long until the open window of bucket closes, at least a second: when a
// bucket was full, how long its caller must wait.
func (c Counter) Wait(tx *gorm.DB, bucket string, now time.Time) (time.Duration, error) {
	now = now.UTC()
	var ends []time.Time
	if err := tx.Table(c.table).Where("bucket = ? AND window_ends > ?", bucket, now).Pluck("window_ends", &ends).Error; err != nil {
		return 0, err
	}
	wait := time.Second // the window closed since it was full
	if len(ends) == 1 {
		wait = max(wait, ends[0].Sub(now))
	}
	return wait, nil
}
