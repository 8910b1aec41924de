package customer

import (
	"math"
	"sync"
	"time"
)

// Throttle limits failed logins per email and per client address in a fixed window that
// starts at the first failure. An attempt counts as a failure from the moment it begins, so
// parallel attempts cannot overshoot the limit; a successful login takes its count back and
// clears the email's failures.
//
// Counters live in memory: each replica counts on its own, so with N replicas an attacker gets
// at most N times the limit. Login is rare enough that this is an acceptable trade for not
// hitting the database on every attempt.
type Throttle struct {
	mu        sync.Mutex
	window    time.Duration
	perEmail  int
	perAddr   int
	entries   map[string]*failures
	lastSweep time.Time
}

type failures struct {
	count int
	reset time.Time
}

// NewThrottle allows perEmail failed attempts per email and perAddr per client address in
// each window.
func NewThrottle(window time.Duration, perEmail, perAddr int) *Throttle {
	return &Throttle{window: window, perEmail: perEmail, perAddr: perAddr, entries: map[string]*failures{}}
}

// Attempt is a login attempt in progress. It is counted as a failure unless Succeed or Cancel
// is called.
type Attempt struct {
	t           *Throttle
	email, addr string
}

// Begin records an attempt for email and client address, or refuses it with a ThrottledError
// (recording nothing) when either has reached its limit in the current window.
func (t *Throttle) Begin(now time.Time, email, addr string) (*Attempt, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	ek, ak := "email:"+email, "addr:"+addr
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{ek, t.perEmail}, {ak, t.perAddr}} {
		if w := t.current(k.key, now); w != nil && w.count >= k.limit {
			wait = max(wait, w.reset.Sub(now))
		}
	}
	if wait > 0 {
		return nil, &ThrottledError{RetryAfter: time.Duration(math.Ceil(wait.Seconds())) * time.Second}
	}
	for _, k := range []string{ek, ak} {
		w := t.current(k, now)
		if w == nil {
			w = &failures{reset: now.Add(t.window)}
			t.entries[k] = w
		}
		w.count++
	}
	return &Attempt{t: t, email: ek, addr: ak}, nil
}

// Succeed takes the attempt back and forgets the email's earlier failures.
func (a *Attempt) Succeed() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	delete(a.t.entries, a.email)
	a.t.uncount(a.addr)
}

// Cancel takes the attempt back: it neither failed nor succeeded (the database was down, say).
func (a *Attempt) Cancel() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.t.uncount(a.email)
	a.t.uncount(a.addr)
}

func (t *Throttle) uncount(key string) {
	if w, ok := t.entries[key]; ok && w.count > 0 {
		w.count--
	}
}

// current returns the key's window if it is still open.
func (t *Throttle) current(key string, now time.Time) *failures {
	w, ok := t.entries[key]
	if !ok {
		return nil
	}
	if !now.Before(w.reset) {
		delete(t.entries, key)
		return nil
	}
	return w
}

// sweep drops closed windows, at most once per window, so memory stays bounded by the number
// of emails and addresses seen in one window.
func (t *Throttle) sweep(now time.Time) {
	if now.Sub(t.lastSweep) < t.window {
		return
	}
	t.lastSweep = now
	for k, w := range t.entries {
		if !now.Before(w.reset) {
			delete(t.entries, k)
		}
	}
}
