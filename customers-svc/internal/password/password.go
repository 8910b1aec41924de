// Package password hashes passwords with argon2id (github.com/alexedwards/argon2id), in the PHC
// string format that records the parameters next to the salt and key.
package password

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"

	"github.com/alexedwards/argon2id"
)

// OWASP is the OWASP Password Storage Cheat Sheet's first argon2id configuration: 19 MiB of
// memory, 2 iterations, 1 degree of parallelism.
var OWASP = argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// ErrBusy means the hashing queue is full: the call was refused at once, without waiting or
// hashing, and may be retried shortly.
var ErrBusy = errors.New("password hashing queue is full")

// DefaultQueue is how many calls may wait for a hashing slot when New is given no queue length.
const DefaultQueue = 32

// Hasher hashes and verifies passwords. At most as many hashes run at once as there are CPUs:
// each takes Memory of RAM, so unbounded parallel hashing would be a memory exhaustion attack.
// Calls beyond that wait in a bounded queue: when it is full they fail at once with ErrBusy,
// and a caller whose context ends while it waits leaves the queue without any work done for
// it. New passwords (Hash: registrations, password changes) may hold at most half the slots
// (at least one), so that a flood of registrations cannot keep logins (Verify) from hashing.
type Hasher struct {
	params argon2id.Params
	all    *queue // every hash
	create *queue // Hash only, taken before all
}

// New returns a Hasher with the given parameters (OWASP in production; tests may use cheaper
// ones) that lets up to queueLen calls wait for a slot (DefaultQueue when queueLen <= 0).
func New(params argon2id.Params, queueLen int) *Hasher {
	if queueLen <= 0 {
		queueLen = DefaultQueue
	}
	workers := runtime.GOMAXPROCS(0)
	return &Hasher{
		params: params,
		all:    newQueue(workers, queueLen),
		create: newQueue(max(1, workers/2), queueLen),
	}
}

// Hash returns the PHC string of password with a fresh random salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.create.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	releaseAll, err := h.all.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer releaseAll()
	return argon2id.CreateHash(password, &h.params)
}

// Verify reports whether password matches hash, comparing in constant time. It uses the
// parameters recorded in hash, so hashes made with older parameters keep working.
func (h *Hasher) Verify(ctx context.Context, password, hash string) (bool, error) {
	release, err := h.all.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return argon2id.ComparePasswordAndHash(password, hash)
}

// queue is a semaphore of slots with a bounded number of waiters.
type queue struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
}

func newQueue(slots, waiting int) *queue {
	return &queue{slots: make(chan struct{}, slots), maxWaiting: int64(waiting)}
}

// acquire takes a slot, waiting in the queue if there is room in it, and returns the function
// that gives the slot back. It fails with ErrBusy when the queue is full and with the
// context's error when ctx ends first (or had ended already: no work for a caller that left).
func (q *queue) acquire(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	release := func() { <-q.slots }
	select {
	case q.slots <- struct{}{}:
		return release, nil
	default:
	}
	if q.waiting.Add(1) > q.maxWaiting {
		q.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer q.waiting.Add(-1)
	select {
	case q.slots <- struct{}{}:
		if err := ctx.Err(); err != nil {
			release()
			return nil, err
		}
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
