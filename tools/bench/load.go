package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one load run measured.
type result struct {
	Requests int
	Errors   int
	Elapsed  time.Duration
	P50, P99 time.Duration
	// latencies are every request's latency, sorted.
	latencies []time.Duration
}

// merge returns the result of r and o measured one after the other.
func (r result) merge(o result) result {
	all := slices.Concat(r.latencies, o.latencies)
	slices.Sort(all)
	return summarize(all, r.Errors+o.Errors, r.Elapsed+o.Elapsed)
}

// summarize computes a result from sorted latencies.
func summarize(sorted []time.Duration, errs int, elapsed time.Duration) result {
	pct := func(p float64) time.Duration {
		if len(sorted) == 0 {
			return 0
		}
		return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
	}
	return result{Requests: len(sorted), Errors: errs, Elapsed: elapsed, P50: pct(0.50), P99: pct(0.99), latencies: sorted}
}

// RPS is the completed requests per second, errors included.
func (r result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// load runs call from workers goroutines in a closed loop for d and records each call's
// latency. call gets the sequence number of the request, to spread it over users; it returns
// false for a failed request.
func load(d time.Duration, workers int, call func(ctx context.Context, n int) bool) result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return loadUntil(ctx, workers, call)
}

// loadUntil is load until ctx ends.
func loadUntil(ctx context.Context, workers int, call func(ctx context.Context, n int) bool) result {
	var seq atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			bad := 0
			for ctx.Err() == nil {
				n := int(seq.Add(1))
				t0 := time.Now()
				ok := call(context.Background(), n)
				lat = append(lat, time.Since(t0))
				if !ok {
					bad++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	return summarize(all, errs, elapsed)
}
