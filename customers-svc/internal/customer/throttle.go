package customer

import (
	"context"
	"math"
	"sync"
	"time"
)

// Limit is a failure counter's key and the most failures it may have in one window.
type Limit struct {
	Key string
	Max int
}

// Counter keeps the failure counts that a Throttle limits. customerdb keeps them in the
// service's database, so that every replica counts against the same limits.
type Counter interface {
	// CountFailure adds one failure to every key of limits, each in its own fixed window that
	// starts at the key's first failure and lasts window, all or none: when a key already has
	// its Max failures in its open window, it changes nothing and returns how long until that
	// window closes (the longest wait, when several keys are full). A concurrent call never
	// lets a key pass its Max.
	CountFailure(ctx context.Context, now time.Time, window time.Duration, limits []Limit) (wait time.Duration, err error)
	// UncountFailure takes one failure back from each key's open window.
	UncountFailure(ctx context.Context, now time.Time, keys []string) error
	// ClearFailures forgets the key's failures.
	ClearFailures(ctx context.Context, key string) error
	// DeleteClosedWindows drops the counts of every window that closed before now.
	DeleteClosedWindows(ctx context.Context, now time.Time) error
}

// Throttle limits failed logins per email and per client address in a fixed window that
// starts at the first failure. An attempt counts as a failure from the moment it begins, so
// parallel attempts cannot overshoot the limit, on one replica or across several; a successful
// login takes its count back and clears the email's failures.
type Throttle struct {
	counter  Counter
	window   time.Duration
	perEmail int
	perAddr  int

	mu        sync.Mutex
	lastSweep time.Time
}

// NewThrottle allows perEmail failed attempts per email and perAddr per client address in
// each window, counted by counter.
func NewThrottle(counter Counter, window time.Duration, perEmail, perAddr int) *Throttle {
	return &Throttle{counter: counter, window: window, perEmail: perEmail, perAddr: perAddr}
}

// Attempt is a login attempt in progress. It is counted as a failure unless Succeed or Cancel
// is called.
type Attempt struct {
	t           *Throttle
	now         time.Time
	email, addr string
}

// Begin records an attempt for email and client address, or refuses it with a ThrottledError
// (recording nothing) when either has reached its limit in the current window.
func (t *Throttle) Begin(ctx context.Context, now time.Time, email, addr string) (*Attempt, error) {
	if err := t.sweep(ctx, now); err != nil {
		return nil, err
	}
	a := &Attempt{t: t, now: now, email: "email:" + email, addr: "addr:" + addr}
	limits := []Limit{{a.email, t.perEmail}, {a.addr, t.perAddr}}
	wait, err := t.counter.CountFailure(ctx, now, t.window, limits)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &ThrottledError{RetryAfter: time.Duration(math.Ceil(wait.Seconds())) * time.Second}
	}
	return a, nil
}

// Succeed takes the attempt back and forgets the email's earlier failures.
func (a *Attempt) Succeed(ctx context.Context) error {
	if err := a.t.counter.ClearFailures(ctx, a.email); err != nil {
		return err
	}
	return a.t.counter.UncountFailure(ctx, a.now, []string{a.addr})
}

// Cancel takes the attempt back: it neither failed nor succeeded (the database was down, say).
func (a *Attempt) Cancel(ctx context.Context) error {
	return a.t.counter.UncountFailure(ctx, a.now, []string{a.email, a.addr})
}

// sweep drops closed windows, at most once per window on each replica, so the table stays
// bounded by the emails and addresses seen in one window.
func (t *Throttle) sweep(ctx context.Context, now time.Time) error {
	t.mu.Lock()
	due := now.Sub(t.lastSweep) >= t.window
	if due {
		t.lastSweep = now
	}
	t.mu.Unlock()
	if !due {
		return nil
	}
	return t.counter.DeleteClosedWindows(ctx, now)
}
