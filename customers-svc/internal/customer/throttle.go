package customer

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/acme/shop/foundation/clientnet"
)

// Limit is a counter's key and the most failures it may have in one window.
type Limit struct {
	Key string
	Max int
	// Soft marks a key whose being full refuses only attempts that have failed before: when it
	// is full, the attempt is still admitted, without counting on this key, if the attempt is
	// the first failure in the open window of every other key it counts on.
	Soft bool
}

// Counter keeps the failure counts that a Throttle limits. customerdb keeps them in the
// service's database, so that every replica counts against the same limits.
type Counter interface {
	// CountFailure adds one failure to every key of limits, each in its own fixed window that
	// starts at the key's first failure and lasts window, all or none: when a key already has
	// its Max failures in its open window (and Soft does not let the attempt pass it), it
	// changes nothing and returns how long until that window closes (the longest wait, when
	// several keys are full). Otherwise it returns the keys it counted on. A concurrent call
	// never lets a key pass its Max.
	CountFailure(ctx context.Context, now time.Time, window time.Duration, limits []Limit) (counted []string, wait time.Duration, err error)
	// UncountFailure takes one failure back from each key's open window.
	UncountFailure(ctx context.Context, now time.Time, keys []string) error
	// ClearFailures forgets the key's failures.
	ClearFailures(ctx context.Context, key string) error
	// DeleteClosedWindows drops the counts of every window that closed before now.
	DeleteClosedWindows(ctx context.Context, now time.Time) error
}

// Limits are a Throttle's windows and the most attempts each counter allows in one.
type Limits struct {
	// Window is the login failures' window.
	Window time.Duration
	// PerEmailAddr limits failed logins for one email from one client address; PerAddr from
	// one address for any email; PerEmail for one email from all addresses together. PerEmail
	// never refuses an address that has not failed (see Throttle).
	PerEmailAddr, PerAddr, PerEmail int
	// RegisterWindow is the registrations' window; RegisterPerAddr limits the registrations
	// from one client address in it.
	RegisterWindow  time.Duration
	RegisterPerAddr int
	// InFlightPerAddr bounds the logins and registrations from one client address that one
	// replica serves at once (0: no bound). The counters above live in the database; this bound
	// keeps a flood from one address from queueing for the database connections and the
	// hashing queue ahead of everyone else's requests, and costs nothing but a map entry.
	InFlightPerAddr int
	// IPv6Prefix is the prefix length of the network that every limit above counts an IPv6
	// client address as (clientnet.Key): its /64 by default, since a subscriber may take any
	// address of its /64. An IPv4 address counts as itself.
	IPv6Prefix int
}

// Throttle limits failed password checks (logins and the current-password checks of account
// changes) and registrations, in fixed windows that start at the first attempt. Failures count
// per (email, client address), per client address, and per email across addresses, each
// against its own limit; a client address is an IPv4 address or an IPv6 network
// (Limits.IPv6Prefix), and "address" means that below. A correct password from an address that
// has not failed is never refused because of other addresses' failures: the per-email limit,
// which is there against guessing spread over many addresses, refuses only addresses that have
// failed already. An attempt counts as a failure from the moment it begins, so parallel
// attempts cannot overshoot a limit, on one replica or across several; a success takes its
// count back and clears the (email, address) pair's failures.
type Throttle struct {
	counter Counter
	limits  Limits

	mu        sync.Mutex
	lastSweep time.Time
	inFlight  map[string]int // by client address; entries at zero are deleted
}

// NewThrottle returns a Throttle with the limits, counted by counter.
func NewThrottle(counter Counter, limits Limits) *Throttle {
	return &Throttle{counter: counter, limits: limits, inFlight: map[string]int{}}
}

// enter admits one more call from the client address, or refuses it with a ThrottledError
// when the address has Limits.InFlightPerAddr calls in progress on this replica. The caller
// calls the returned function when its call ends.
func (t *Throttle) enter(addr string) (func(), error) {
	if t.limits.InFlightPerAddr <= 0 {
		return func() {}, nil
	}
	addr = t.client(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight[addr] >= t.limits.InFlightPerAddr {
		return nil, &ThrottledError{RetryAfter: time.Second}
	}
	t.inFlight[addr]++
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.inFlight[addr]--; t.inFlight[addr] <= 0 {
			delete(t.inFlight, addr)
		}
	}, nil
}

// Attempt is a password check in progress. It is counted as a failure unless Succeed or
// Cancel is called.
type Attempt struct {
	t       *Throttle
	now     time.Time
	pair    string
	counted []string
}

// Begin records an attempt for email from the client address, or refuses it with a
// ThrottledError (recording nothing) when a limit is reached in the current window.
func (t *Throttle) Begin(ctx context.Context, now time.Time, email, addr string) (*Attempt, error) {
	if err := t.sweep(ctx, now); err != nil {
		return nil, err
	}
	addr = t.client(addr)
	a := &Attempt{t: t, now: now, pair: "pair:" + email + "|" + addr}
	counted, err := t.count(ctx, now, t.limits.Window, []Limit{
		{Key: a.pair, Max: t.limits.PerEmailAddr},
		{Key: "addr:" + addr, Max: t.limits.PerAddr},
		{Key: "email:" + email, Max: t.limits.PerEmail, Soft: true},
	})
	if err != nil {
		return nil, err
	}
	a.counted = counted
	return a, nil
}

// BeginRegistration counts a registration from the client address, or refuses it with a
// ThrottledError when the address has reached its limit in the current window.
func (t *Throttle) BeginRegistration(ctx context.Context, now time.Time, addr string) error {
	if err := t.sweep(ctx, now); err != nil {
		return err
	}
	_, err := t.count(ctx, now, t.limits.RegisterWindow, []Limit{{Key: "register:" + t.client(addr), Max: t.limits.RegisterPerAddr}})
	return err
}

// client returns the client the limits count the address addr as.
func (t *Throttle) client(addr string) string {
	return clientnet.Key(addr, t.limits.IPv6Prefix)
}

func (t *Throttle) count(ctx context.Context, now time.Time, window time.Duration, limits []Limit) ([]string, error) {
	counted, wait, err := t.counter.CountFailure(ctx, now, window, limits)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &ThrottledError{RetryAfter: time.Duration(math.Ceil(wait.Seconds())) * time.Second}
	}
	return counted, nil
}

// Succeed takes the attempt back and forgets the pair's earlier failures. The failures for the
// email from other addresses stay: a success does not reset an attack spread over many.
func (a *Attempt) Succeed(ctx context.Context) error {
	if err := a.t.counter.ClearFailures(ctx, a.pair); err != nil {
		return err
	}
	var rest []string
	for _, k := range a.counted {
		if k != a.pair {
			rest = append(rest, k)
		}
	}
	return a.t.counter.UncountFailure(ctx, a.now, rest)
}

// Cancel takes the attempt back: it neither failed nor succeeded (the database was down, say).
func (a *Attempt) Cancel(ctx context.Context) error {
	return a.t.counter.UncountFailure(ctx, a.now, a.counted)
}

// sweep drops closed windows, at most once per login window on each replica, so the table
// stays bounded by the emails and addresses seen in one window.
func (t *Throttle) sweep(ctx context.Context, now time.Time) error {
	t.mu.Lock()
	due := now.Sub(t.lastSweep) >= t.limits.Window
	if due {
		t.lastSweep = now
	}
	t.mu.Unlock()
	if !due {
		return nil
	}
	return t.counter.DeleteClosedWindows(ctx, now)
}
