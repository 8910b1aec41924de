// Package ratelimit counts, in a service's database, how often each key (a caller's calls that
// change something) is used in fixed windows, so that a limit holds across every replica: one
// row per key and window, counted by one atomic upsert per call. Counter is that upsert, which
// customers' login throttle counts its failures with too; Limiter counts in a table of its own
// (Table) and sweeps the closed windows. grpcserver.LimitWrites puts a Limiter in front of the
// RPCs that write.
package ratelimit

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
)

// Table is the table a Limiter counts in; a service creates it with a migration of its own
// that returns CreateTable.
const Table = "rate_limits"

// DefaultSweepBatch is how many closed windows one transaction of Sweep deletes.
const DefaultSweepBatch = 1000

// SweepLock names the lock that Sweep's transactions hold (database.Exclusively).
const SweepLock = "ratelimit:sweep"

// Options configure New.
type Options struct {
	// Limit is how many times one key may be taken in one window.
	Limit int
	// Window is how long a window lasts; it starts when its key is first taken.
	Window time.Duration
	// SweepBatch is how many closed windows one transaction of Sweep deletes
	// (DefaultSweepBatch).
	SweepBatch int
	// Now is the clock (time.Now); tests move it.
	Now func() time.Time
}

// Limiter counts how often each key is taken, in Table.
type Limiter struct {
	db      *gorm.DB
	opts    Options
	counter Counter
}

// New returns a Limiter on db, whose Table must exist.
func New(db *gorm.DB, opts Options) (*Limiter, error) {
	if opts.Limit < 1 || opts.Window <= 0 {
		return nil, errors.New("ratelimit: Limit and Window must be positive")
	}
	if opts.SweepBatch <= 0 {
		opts.SweepBatch = DefaultSweepBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{db: db, opts: opts, counter: NewCounter(Table, "hits")}, nil
}

// Take counts one use of key and returns 0, or, when key has been taken Limit times in its
// open window, counts nothing and returns how long until that window closes.
func (l *Limiter) Take(ctx context.Context, key string) (time.Duration, error) {
	now := l.opts.Now().UTC()
	db := l.db.WithContext(ctx)
	n, err := l.counter.Count(db, key, l.opts.Limit, l.opts.Window, now)
	if err != nil || n > 0 {
		return 0, err
	}
	return l.counter.Wait(db, key, now)
}

// sweepSQL deletes at most a batch of the windows that closed at or before now, in one
// statement; the outer condition is checked again on a row that a concurrent Take renews
// meanwhile. Arguments: now, now, the batch size.
const sweepSQL = `DELETE FROM rate_limits WHERE window_ends <= ? AND bucket IN
(SELECT bucket FROM rate_limits WHERE window_ends <= ? LIMIT ?`

// Sweep deletes the closed windows, SweepBatch of them per transaction, unless another replica
// is sweeping (then it leaves the rest to that one). Every replica may run it periodically, in
// the background (service.Every): one sweeps at a time, and no call waits for it. On
// PostgreSQL a batch skips the windows a call is counting on right now (FOR UPDATE SKIP
// LOCKED).
func (l *Limiter) Sweep(ctx context.Context) error {
	now := l.opts.Now().UTC()
	return database.DeleteInBatches(ctx, l.db, SweepLock, l.opts.SweepBatch, func(tx *gorm.DB, limit int) (int64, error) {
		q := sweepSQL + ")"
		if database.Dialect(tx) == "postgres" {
			q = sweepSQL + " FOR UPDATE SKIP LOCKED)"
		}
		res := tx.Exec(q, now, now, limit)
		return res.RowsAffected, res.Error
	})
}
