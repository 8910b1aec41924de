package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
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
	// DefaultSweepEvery is how often, at most, a Store deletes the expired keys.
	DefaultSweepEvery = time.Minute
)

// StoreOptions configure NewStore; zero values take the defaults.
type StoreOptions struct {
	// TTL is how long a key is kept after its first request (DefaultTTL).
	TTL time.Duration
	// LockTimeout is how long a first request may hold its key (DefaultLockTimeout); it runs
	// for at most half of it.
	LockTimeout time.Duration
	// SweepEvery is how often, at most, Claim deletes expired keys first (DefaultSweepEvery).
	SweepEvery time.Duration
	// Now is the clock (time.Now); tests move it.
	Now func() time.Time
}

// Store keeps the idempotency keys in the service's database, so that every replica sees the
// same keys. Each key belongs to one caller: (caller, key) is the table's primary key, so keys
// of different callers never meet.
type Store struct {
	db   *gorm.DB
	opts StoreOptions

	mu        sync.Mutex
	lastSweep time.Time
}

// NewStore returns a Store on db, whose Table must exist.
func NewStore(db *gorm.DB, opts StoreOptions) *Store {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = DefaultSweepEvery
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
)

// Claim is the result of Store.Claim.
type Claim struct {
	Outcome Outcome
	// Token identifies the claim, for Complete (Claimed only).
	Token string
	// Response and Status are the stored answer (Done only): the marshalled response message,
	// or the marshalled google.rpc.Status of an error (then Response is nil).
	Response, Status []byte
}

// claimAttempts bounds the rounds of Claim against concurrent claims, sweeps and takeovers of
// the same key; each round loses only to a change by another request.
const claimAttempts = 3

// Claim takes the key of caller for a request with fingerprint, atomically: of several
// requests, on any replicas, exactly one gets Claimed. A key that expired (older than TTL), or
// whose holder has run longer than LockTimeout, is taken over as if it were new. At most every
// SweepEvery, Claim first deletes the expired keys. A Claim that fails (its ctx ended, say)
// withdraws what it may have written of its claim, so that the key is not left held by a
// request that never ran.
func (s *Store) Claim(ctx context.Context, caller, key, fingerprint string) (Claim, error) {
	now := s.opts.Now().UTC()
	s.maybeSweep(ctx, now)
	token, err := newToken()
	if err != nil {
		return Claim{}, err
	}
	db := s.db.WithContext(ctx)
	for range claimAttempts {
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row{
			Caller: caller, IdempotencyKey: key, Fingerprint: fingerprint, Token: token, CreatedAt: now, LockedAt: now,
		})
		if res.Error != nil {
			s.withdraw(ctx, caller, key, token)
			return Claim{}, res.Error
		}
		if res.RowsAffected == 1 {
			return Claim{Outcome: Claimed, Token: token}, nil
		}
		var r row
		err := db.Where("caller = ? AND idempotency_key = ?", caller, key).Take(&r).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			continue // swept or released since the insert: insert again
		}
		if err != nil {
			return Claim{}, err
		}
		var fresh map[string]any
		switch {
		case !r.CreatedAt.After(now.Add(-s.opts.TTL)):
			// Expired but not swept yet: the key is new again.
			fresh = map[string]any{"fingerprint": fingerprint, "token": token, "done": false, "written": false, "reference": "", "response": nil, "status": nil, "created_at": now, "locked_at": now}
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
		res = db.Model(&row{}).Where("caller = ? AND idempotency_key = ? AND token = ?", caller, key, r.Token).Updates(fresh)
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

// Sweep deletes the keys older than TTL and returns how many it deleted.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	return s.sweep(ctx, s.opts.Now().UTC())
}

func (s *Store) sweep(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("created_at <= ?", now.Add(-s.opts.TTL)).Delete(&row{})
	return res.RowsAffected, res.Error
}

// maybeSweep sweeps when the last sweep of this Store is SweepEvery ago. A failed sweep is
// left to the next: Claim treats expired keys as new anyway.
func (s *Store) maybeSweep(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastSweep) >= s.opts.SweepEvery
	if due {
		s.lastSweep = now
	}
	s.mu.Unlock()
	if due {
		_, _ = s.sweep(ctx, now)
	}
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
