package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
)

// Table is the name of the table a Store keeps its keys in. A service creates it with a
// migration of its own that returns CreateTable.
const Table = "idempotency_keys"

// Defaults of StoreOptions.
const (
	// DefaultTTL is how long a key is kept after its first request.
	DefaultTTL = 24 * time.Hour
	// DefaultLockTimeout is how long a request that holds a key may run before another request
	// with the key may take it over (its replica crashed, say). A request that holds a key runs
	// for at most half of it (the interceptor's bound), so a live holder is done and recorded
	// before its key can be taken over.
	DefaultLockTimeout = time.Minute
	// DefaultMaxKeys is how many live keys (younger than the TTL) one caller may have.
	DefaultMaxKeys = 1000
	// DefaultSweepBatch is how many expired keys one transaction of Sweep deletes.
	DefaultSweepBatch = 1000
)

// StoreOptions configure NewStore; zero values take the defaults.
type StoreOptions struct {
	// TTL is how long a key is kept after its first request (DefaultTTL).
	TTL time.Duration
	// LockTimeout is how long a first request may hold its key (DefaultLockTimeout); it runs
	// for at most half of it.
	LockTimeout time.Duration
	// MaxKeys is how many live keys one caller may have (DefaultMaxKeys): a request with a new
	// key beyond them is refused until the caller's oldest key expires. No key is evicted for a
	// new one, so that every answer recorded can be replayed for the whole TTL.
	MaxKeys int
	// SweepBatch is how many expired keys one transaction of Sweep deletes (DefaultSweepBatch).
	SweepBatch int
	// Now is the clock (time.Now); tests move it.
	Now func() time.Time
}

// Store keeps the idempotency keys in the service's database, so that every replica sees the
// same keys. Each key belongs to one caller: (caller, key) is the table's primary key, so keys
// of different callers never meet.
type Store struct {
	db   *gorm.DB
	opts StoreOptions
}

// NewStore returns a Store on db, whose Table must exist.
func NewStore(db *gorm.DB, opts StoreOptions) *Store {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.SweepBatch <= 0 {
		opts.SweepBatch = DefaultSweepBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{db: db, opts: opts}
}

// row is a key as the table holds it. Token names the request that holds (or completed) the
// key; a request that lost its key to another may no longer write to it. Written and Reference
// are Apply's mark and what its write kept with it.
type row struct {
	Caller         string `gorm:"primaryKey"`
	IdempotencyKey string `gorm:"primaryKey"`
	Fingerprint    string
	Token          string
	Done           bool
	Written        bool
	Reference      string
	Response       []byte
	Status         []byte
	CreatedAt      time.Time
	LockedAt       time.Time
}

func (row) TableName() string { return Table }

// Outcome is what Claim found.
type Outcome int

// The outcomes of Claim.
const (
	// Claimed: the key is now held by this request, which must run and then Complete it with
	// the Claim's Token.
	Claimed Outcome = iota + 1
	// Running: another request holds the key and is still running.
	Running
	// Done: a request with the key completed; Response and Status are its answer.
	Done
	// Mismatch: the key was used for a request with another fingerprint.
	Mismatch
	// Full: the key is new, and the caller already has MaxKeys live keys; RetryAfter says
	// when the oldest of them expires.
	Full
)

// Claim is the result of Store.Claim.
type Claim struct {
	Outcome Outcome
	// Token identifies the claim, for Complete (Claimed only).
	Token string
	// Response and Status are the stored answer (Done only): the marshalled response message,
	// or the marshalled google.rpc.Status of an error (then Response is nil).
	Response, Status []byte
	// RetryAfter is how long until the caller may claim a new key (Full only).
	RetryAfter time.Duration
}

// claimAttempts bounds the rounds of Claim against concurrent claims, sweeps and takeovers of
// the same key; each round loses only to a change by another request.
const claimAttempts = 3

// Claim takes the key of caller for a request with fingerprint, atomically: of several
// requests, on any replicas, exactly one gets Claimed. A key that expired (older than TTL), or
// whose holder has run longer than LockTimeout, is taken over as if it were new. A key that is
// new (or expired) is claimed only while the caller has fewer than MaxKeys live keys, else the
// outcome is Full; a live key answers as it did, whatever the caller's count. A Claim that
// fails (its ctx ended, say) withdraws what it may have written of its claim, so that the key
// is not left held by a request that never ran.
func (s *Store) Claim(ctx context.Context, caller, key, fingerprint string) (Claim, error) {
	now := s.opts.Now().UTC()
	token, err := newToken()
	if err != nil {
		return Claim{}, err
	}
	db := s.db.WithContext(ctx)
	for range claimAttempts {
		claimed, full, err := s.claimNew(ctx, caller, key, fingerprint, token, now)
		if err != nil {
			s.withdraw(ctx, caller, key, token)
			return Claim{}, err
		}
		if claimed {
			return Claim{Outcome: Claimed, Token: token}, nil
		}
		var r row
		err = db.Where("caller = ? AND idempotency_key = ?", caller, key).Take(&r).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return Claim{}, err
		}
		if err != nil || !r.CreatedAt.After(now.Add(-s.opts.TTL)) {
			// No live key: the caller is at the cap, or the key was swept, released or renewed
			// by another request since: claim it again.
			if full {
				return s.full(ctx, caller, now)
			}
			continue
		}
		var fresh map[string]any
		switch {
		case r.Fingerprint != fingerprint:
			return Claim{Outcome: Mismatch}, nil
		case r.Done:
			return Claim{Outcome: Done, Response: r.Response, Status: r.Status}, nil
		case r.LockedAt.After(now.Add(-s.opts.LockTimeout)):
			return Claim{Outcome: Running}, nil
		default:
			// The holder ran out of time (its replica died, say): take the key over. Whether it
			// wrote, and what it kept, stay: then Apply writes nothing again.
			fresh = map[string]any{"token": token, "locked_at": now}
		}
		// Only if no one else changed the row since it was read.
		res := db.Model(&row{}).Where("caller = ? AND idempotency_key = ? AND token = ?", caller, key, r.Token).Updates(fresh)
		if res.Error != nil {
			s.withdraw(ctx, caller, key, token)
			return Claim{}, res.Error
		}
		if res.RowsAffected == 1 {
			return Claim{Outcome: Claimed, Token: token}, nil
		}
	}
	// Others keep changing the key right now: one of them is running it.
	return Claim{Outcome: Running}, nil
}

// claimNewSQL inserts a key, or renews one that has expired (created at or before the last
// argument) as if it were new; a live key it leaves as it is. PostgreSQL and SQLite take the
// same SQL. Arguments: caller, key, fingerprint, token, done and written (false), now, now,
// the expiry.
const claimNewSQL = `INSERT INTO idempotency_keys
	(caller, idempotency_key, fingerprint, token, done, written, reference, created_at, locked_at)
VALUES (?, ?, ?, ?, ?, ?, '', ?, ?)
ON CONFLICT (caller, idempotency_key) DO UPDATE SET
	fingerprint = excluded.fingerprint, token = excluded.token, done = excluded.done,
	written = excluded.written, reference = excluded.reference, response = NULL, status = NULL,
	created_at = excluded.created_at, locked_at = excluded.locked_at
WHERE idempotency_keys.created_at <= ?`

// claimNew claims the key as a new one with token, unless it is live, or the caller already
// has MaxKeys live keys (full). The count and the insert are one step under a lock of the
// caller's keys, so that concurrent requests with new keys, on any replicas, cannot pass the
// cap together.
func (s *Store) claimNew(ctx context.Context, caller, key, fingerprint, token string, now time.Time) (claimed, full bool, err error) {
	expired := now.Add(-s.opts.TTL)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := database.Lock(tx, "idempotency:"+caller); err != nil {
			return err
		}
		var live int64
		if err := tx.Model(&row{}).Where("caller = ? AND created_at > ?", caller, expired).Count(&live).Error; err != nil {
			return err
		}
		if live >= int64(s.opts.MaxKeys) {
			full = true
			return nil
		}
		res := tx.Exec(claimNewSQL, caller, key, fingerprint, token, false, false, now, now, expired)
		claimed = res.RowsAffected == 1
		return res.Error
	})
	return claimed && err == nil, full, err
}

// full is the Claim of a caller at the cap: it may claim a new key once its oldest live key
// expires.
func (s *Store) full(ctx context.Context, caller string, now time.Time) (Claim, error) {
	var oldest []row
	err := s.db.WithContext(ctx).Select("created_at").Where("caller = ? AND created_at > ?", caller, now.Add(-s.opts.TTL)).
		Order("created_at").Limit(1).Find(&oldest).Error
	if err != nil {
		return Claim{}, err
	}
	wait := time.Second // the oldest expired meanwhile: try again at once, or nearly
	if len(oldest) == 1 {
		wait = max(wait, oldest[0].CreatedAt.Add(s.opts.TTL).Sub(now))
	}
	return Claim{Outcome: Full, RetryAfter: wait}, nil
}

// Complete stores the answer of the request that holds the key with token: the marshalled
// response, or the marshalled google.rpc.Status of its error. It reports whether the request
// still held the key (it did not when it ran past LockTimeout and another took it over).
func (s *Store) Complete(ctx context.Context, caller, key, token string, response, status []byte) (bool, error) {
	res := s.db.WithContext(ctx).Model(&row{}).
		Where("caller = ? AND idempotency_key = ? AND token = ? AND done = ?", caller, key, token, false).
		Updates(map[string]any{"done": true, "response": response, "status": status})
	return res.RowsAffected == 1, res.Error
}

// withdraw deletes the claim with token, if the failed Claim that made it wrote it after all
// (a commit can succeed and still report an error), even when ctx has ended. Its request
// never ran, so the key is new again; a key taken over from a crashed holder likewise, unless
// that holder's write committed (Apply's mark): that key stays, held until the LockTimeout, so
// that the retry which takes it over next rebuilds the answer instead of writing again.
func (s *Store) withdraw(ctx context.Context, caller, key, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
	defer cancel()
	_ = s.db.WithContext(ctx).
		Where("caller = ? AND idempotency_key = ? AND token = ? AND done = ? AND written = ?", caller, key, token, false, false).
		Delete(&row{}).Error
}

// runTimeout bounds how long a request that holds a key runs: half the LockTimeout, so that
// it has answered, and its answer is recorded, before another request may take the key over.
func (s *Store) runTimeout() time.Duration { return s.opts.LockTimeout / 2 }

// SweepLock names the lock that Sweep's transactions hold (database.Exclusively).
const SweepLock = "idempotency:sweep"

// sweepSQL deletes at most a batch of the keys created at or before the expiry, oldest first,
// in one statement. The outer condition is checked again on a row that a concurrent Claim
// renews meanwhile, so a key that is new again is never deleted. Arguments: the expiry, the
// expiry, the batch size.
const sweepSQL = `DELETE FROM idempotency_keys WHERE created_at <= ? AND (caller, idempotency_key) IN
(SELECT caller, idempotency_key FROM idempotency_keys WHERE created_at <= ? ORDER BY created_at LIMIT ?`

// Sweep deletes the keys older than TTL, SweepBatch of them per transaction, unless another
// replica is sweeping (then it leaves the rest to that one). Every replica may run it
// periodically, in the background (service.Every): one sweeps at a time, and no request waits
// for it. On PostgreSQL a batch skips the keys that a request has locked right now (FOR UPDATE
// SKIP LOCKED), and the next sweep deletes them.
func (s *Store) Sweep(ctx context.Context) error {
	expired := s.opts.Now().UTC().Add(-s.opts.TTL)
	return database.DeleteInBatches(ctx, s.db, SweepLock, s.opts.SweepBatch, func(tx *gorm.DB, limit int) (int64, error) {
		q := sweepSQL + ")"
		if database.Dialect(tx) == "postgres" {
			q = sweepSQL + " FOR UPDATE SKIP LOCKED)"
		}
		res := tx.Exec(q, expired, expired, limit)
		return res.RowsAffected, res.Error
	})
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
