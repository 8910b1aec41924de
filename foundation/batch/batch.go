// Package batch turns concurrent lookups of single keys into one query for many keys, without
// waiting for a batch to fill.
//
// Under load, the cost of a primary-key lookup is mostly the round trip (system calls on both
// sides, the database's per-statement overhead), not the lookup. A Loader runs one fetch at a
// time; calls that arrive while it runs queue up and go together in the next fetch. An idle
// Loader fetches a lone key at once, on the caller's goroutine, so batching adds no latency; a
// busy one fetches bigger batches, so the round trips per key fall as the load rises. One
// fetch at a time is what makes the batches large: in make bench, two concurrent fetches per
// Loader instead of one cost a third of the authenticated requests' throughput, four more than
// half (docs/performance.md).
//
// Every key is fetched by a query that starts after its Load was called, never by one already
// running: a Load that begins after a write has committed always sees that write. Token
// validation relies on it, so that a revoked session is refused as soon as the revocation
// returns.
//
// Data loaders such as graph-gophers/dataloader collect a batch for a fixed wait instead, which
// adds that wait to every call when the load is light.
package batch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Fetch looks up keys (unique, at most the Loader's batch size) and returns the values it
// found; a key missing from the map was not found. An error fails every Load of the batch.
type Fetch[K comparable, V any] func(ctx context.Context, keys []K) (map[K]V, error)

// Each adapts a lookup of one key (found reports whether it exists) to a Fetch that looks the
// keys up one after the other: for a database with no round trip to save, or with no way to
// ask for many keys in one statement (SQLite).
func Each[K comparable, V any](one func(ctx context.Context, key K) (value V, found bool, err error)) Fetch[K, V] {
	return func(ctx context.Context, keys []K) (map[K]V, error) {
		out := make(map[K]V, len(keys))
		for _, k := range keys {
			v, found, err := one(ctx, k)
			if err != nil {
				return nil, err
			}
			if found {
				out[k] = v
			}
		}
		return out, nil
	}
}

// Loader batches the Loads of one kind of value. Its zero value is not usable; use New.
type Loader[K comparable, V any] struct {
	fetch    Fetch[K, V]
	maxBatch int
	timeout  time.Duration
	observe  func(keys int)

	mu      sync.Mutex
	queue   []*call[K, V]
	working bool // a goroutine is fetching; it takes whatever is queued when it is done
}

// call is one Load waiting for its value.
type call[K comparable, V any] struct {
	ctx   context.Context
	key   K
	value V
	found bool
	err   error
	done  chan struct{}
}

// New returns a Loader whose fetches take at most maxBatch keys and at most timeout: since
// every Load waits for the fetch in front of it, one hung query (a half-open connection, say)
// must not hold up every lookup for longer than that.
func New[K comparable, V any](fetch Fetch[K, V], maxBatch int, timeout time.Duration) *Loader[K, V] {
	return &Loader[K, V]{fetch: fetch, maxBatch: max(1, maxBatch), timeout: timeout}
}

// Observe has f called with the number of keys of every fetch (a histogram of batch sizes,
// say). Call it before the first Load.
func (l *Loader[K, V]) Observe(f func(keys int)) { l.observe = f }

// Queued is the number of Loads waiting for a fetch to start; tests wait on it.
func (l *Loader[K, V]) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Load returns the value of key and whether it was found. It returns ctx's error if ctx ends
// first; the fetch it was part of still completes for the other callers.
func (l *Loader[K, V]) Load(ctx context.Context, key K) (V, bool, error) {
	c := &call[K, V]{ctx: ctx, key: key, done: make(chan struct{})}
	l.mu.Lock()
	if !l.working {
		// Nothing is being fetched, so nothing is queued either: fetch this key at once, on
		// this goroutine, which saves an idle service two goroutine hand-offs per lookup.
		// Calls that arrive meanwhile queue up, and a worker takes them over.
		l.working = true
		l.mu.Unlock()
		l.run([]*call[K, V]{c}, make([]K, 0, 1))
		l.handOff()
		select {
		case <-c.done:
			return c.value, c.found, c.err
		default: // ctx had ended before the fetch started
			var zero V
			return zero, false, ctx.Err()
		}
	}
	l.queue = append(l.queue, c)
	l.mu.Unlock()
	select {
	case <-c.done:
		return c.value, c.found, c.err
	case <-ctx.Done():
		var zero V
		return zero, false, ctx.Err()
	}
}

// handOff ends a fetch made on a caller's goroutine: a worker takes over the calls that queued
// meanwhile, if any.
func (l *Loader[K, V]) handOff() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		l.working = false
		return
	}
	go l.work()
}

// work fetches batches from the queue until it is empty.
func (l *Loader[K, V]) work() {
	batch := make([]*call[K, V], 0, l.maxBatch)
	keys := make([]K, 0, l.maxBatch)
	for {
		l.mu.Lock()
		n := min(len(l.queue), l.maxBatch)
		if n == 0 {
			l.working = false
			l.queue = nil // let the backing array go after a burst
			l.mu.Unlock()
			return
		}
		batch = append(batch[:0], l.queue[:n]...)
		clear(l.queue[:n])
		l.queue = l.queue[n:]
		l.mu.Unlock()
		l.run(batch, keys[:0])
	}
}

// run fetches one batch and hands every caller its value.
func (l *Loader[K, V]) run(batch []*call[K, V], keys []K) {
	live := batch[:0]
	for _, c := range batch {
		if c.ctx.Err() != nil {
			continue // its caller has returned already
		}
		live = append(live, c)
		if !containsKey(keys, c.key) {
			keys = append(keys, c.key)
		}
	}
	if len(live) == 0 {
		return
	}
	if l.observe != nil {
		l.observe(len(keys))
	}
	values, err := l.safeFetch(live, keys)
	for _, c := range live {
		if err != nil {
			c.err = err
		} else {
			c.value, c.found = values[c.key]
		}
		close(c.done)
	}
}

// safeFetch runs the fetch, turning a panic into an error for the batch's callers: the fetch
// runs on the Loader's goroutine, where no gRPC recovery interceptor would catch it.
func (l *Loader[K, V]) safeFetch(batch []*call[K, V], keys []K) (values map[K]V, err error) {
	ctx, cancel := fetchContext(batch, l.timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			values, err = nil, fmt.Errorf("batch fetch panicked: %v", p)
		}
	}()
	return l.fetch(ctx, keys)
}

// containsKey reports whether keys holds key; batches are small, so a scan beats a map.
func containsKey[K comparable](keys []K, key K) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

type callersKey struct{}

// Callers returns, in a fetch's context, the contexts of the Loads the fetch serves, so that
// the fetch can pass on what identifies each (their request ids, say). The fetch's own
// context keeps only the first's values.
func Callers(ctx context.Context) []context.Context {
	callers, _ := ctx.Value(callersKey{}).([]context.Context)
	return callers
}

// fetchContext is the context of a batch's fetch: it keeps the first caller's values (for
// logging and tracing) but not their cancellation, since one caller giving up must not fail
// the others. It ends after timeout, or as soon as every caller of the batch has gone
// (cancelled, or past its deadline): a fetch nobody waits for must not hold the Loader up.
func fetchContext[K comparable, V any](batch []*call[K, V], timeout time.Duration) (context.Context, context.CancelFunc) {
	callers := make([]context.Context, len(batch))
	for i, c := range batch {
		callers[i] = c.ctx
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(batch[0].ctx), callersKey{}, callers), timeout)
	var waiting atomic.Int32
	waiting.Store(int32(len(batch))) //nolint:gosec // a batch is small
	stops := make([]func() bool, len(batch))
	for i, c := range batch {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
