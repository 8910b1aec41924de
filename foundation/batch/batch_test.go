package batch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/acme/shop/foundation/batch"
)

// recorder is a Fetch that records its batches and can be held before it reads, to let
// calls pile up behind it.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	running atomic.Int32
	peak    atomic.Int32
	hold    chan struct{} // when set, fetches wait on it after recording their keys
	started chan struct{} // when set, receives once per fetch after its keys are recorded
	value   func(key string) (string, bool)
}

func (r *recorder) fetch(_ context.Context, keys []string) (map[string]string, error) {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(keys))
	r.mu.Unlock()
	if r.started != nil {
		r.started <- struct{}{}
	}
	if r.hold != nil {
		<-r.hold
	}
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := r.value(k); ok {
			out[k] = v
		}
	}
	return out, nil
}

func (r *recorder) recorded() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// waitQueued waits, in a synctest bubble, until every goroutine of the test is blocked, and
// checks that n Loads are then queued behind the running fetch.
func waitQueued[K comparable, V any](t *testing.T, l *batch.Loader[K, V], n int) {
	t.Helper()
	synctest.Wait()
	if q := l.Queued(); q != n {
		t.Fatalf("%d Loads queued, want %d", q, n)
	}
}

func upper(k string) (string, bool) { return "v-" + k, k != "missing" }

func TestLoneLoadFetchesAtOnce(t *testing.T) {
	r := &recorder{value: upper}
	l := batch.New(r.fetch, 16, time.Minute)
	v, found, err := l.Load(context.Background(), "a")
	if v != "v-a" || !found || err != nil {
		t.Fatalf("Load(a) = %q, %v, %v", v, found, err)
	}
	if _, found, err := l.Load(context.Background(), "missing"); found || err != nil {
		t.Errorf("Load(missing) found = %v, err = %v; want not found, no error", found, err)
	}
	if got := r.recorded(); len(got) != 2 || len(got[0]) != 1 || len(got[1]) != 1 {
		t.Errorf("batches = %v, want one single-key fetch per sequential Load", got)
	}
}

// loadAll starts one Load per key and returns a function that waits for their results.
func loadAll(l *batch.Loader[string, string], keys []string) func() map[string]string {
	var mu sync.Mutex
	got := map[string]string{}
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			v, _, err := l.Load(context.Background(), k)
			if err != nil {
				v = "error: " + err.Error()
			}
			mu.Lock()
			got[k] = v
			mu.Unlock()
		})
	}
	return func() map[string]string { wg.Wait(); return got }
}

// TestCallsQueuedBehindAFetchGoTogether holds the only worker's first fetch, queues 10 more
// Loads (two of them for the same key) and checks that they are fetched in batches of at most
// the batch size, each key once.
func TestCallsQueuedBehindAFetchGoTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{value: upper, hold: make(chan struct{}), started: make(chan struct{}, 16)}
		l := batch.New(r.fetch, 4, time.Minute)
		first := loadAll(l, []string{"first"})
		<-r.started
		keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k8"}
		rest := loadAll(l, keys)
		waitQueued(t, l, len(keys))
		close(r.hold)
		if got := first(); got["first"] != "v-first" {
			t.Errorf("first = %v", got)
		}
		got := rest()
		for _, k := range keys {
			if got[k] != "v-"+k {
				t.Errorf("Load(%s) = %q", k, got[k])
			}
		}
		// 10 queued calls, 4 per fetch: 3 fetches after the first, each key once per fetch.
		batches := r.recorded()
		if len(batches) != 4 {
			t.Errorf("%d fetches, want 4: %v", len(batches), batches)
		}
		for _, b := range batches {
			if len(b) > 4 {
				t.Errorf("batch %v is larger than the batch size 4", b)
			}
			if len(slices.Compact(slices.Sorted(slices.Values(b)))) != len(b) {
				t.Errorf("batch %v fetches a key twice", b)
			}
		}
	})
}

// TestLoadNeverJoinsARunningFetch is the property token revocation relies on: a Load that
// starts after a write is never answered by a fetch that began before it.
func TestLoadNeverJoinsARunningFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var state atomic.Pointer[string]
		before, after := "before", "after"
		state.Store(&before)
		started := make(chan struct{}, 4)
		hold := make(chan struct{})
		var held atomic.Bool
		fetch := func(_ context.Context, keys []string) (map[string]string, error) {
			seen := *state.Load() // the fetch's snapshot, taken when it starts
			if held.CompareAndSwap(false, true) {
				started <- struct{}{}
				<-hold
			}
			out := map[string]string{}
			for _, k := range keys {
				out[k] = seen
			}
			return out, nil
		}
		l := batch.New(fetch, 16, time.Minute)
		early := loadAll(l, []string{"session"})
		<-started // the first fetch has read "before" and is still running
		state.Store(&after)
		late := loadAll(l, []string{"session"})
		waitQueued(t, l, 1) // the late Load was called while the first fetch ran
		close(hold)
		if got := early()["session"]; got != "before" {
			t.Errorf("early Load = %q, want before", got)
		}
		if got := late()["session"]; got != "after" {
			t.Errorf("Load started after the write = %q, want after: it was answered by a fetch that began before it", got)
		}
	})
}

// TestOneFetchAtATime loads 200 keys at once, the first fetch held until the others have
// queued: never more than one fetch runs, and the calls share fetches.
func TestOneFetchAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{value: func(k string) (string, bool) { return k, true }, hold: make(chan struct{})}
		l := batch.New(r.fetch, 8, time.Minute)
		var keys []string
		for i := range 200 {
			keys = append(keys, string(rune('A'+i%50))+string(rune('a'+i/50)))
		}
		wait := loadAll(l, keys)
		waitQueued(t, l, len(keys)-1)
		close(r.hold)
		got := wait()
		for _, k := range keys {
			if got[k] != k {
				t.Fatalf("Load(%s) = %q", k, got[k])
			}
		}
		if p := r.peak.Load(); p > 1 {
			t.Errorf("%d fetches ran at once, want 1", p)
		}
		if n := len(r.recorded()); n >= len(keys) {
			t.Errorf("%d fetches for %d concurrent Loads: no batching", n, len(keys))
		}
	})
}

func TestFetchErrorFailsTheBatch(t *testing.T) {
	errDown := errors.New("database down")
	calls := 0
	l := batch.New(func(context.Context, []string) (map[string]string, error) {
		calls++
		if calls == 1 {
			return nil, errDown
		}
		return map[string]string{"a": "ok"}, nil
	}, 4, time.Minute)
	if _, _, err := l.Load(context.Background(), "a"); !errors.Is(err, errDown) {
		t.Errorf("Load during an outage = %v, want %v", err, errDown)
	}
	if v, found, err := l.Load(context.Background(), "a"); v != "ok" || !found || err != nil {
		t.Errorf("Load after recovery = %q, %v, %v", v, found, err)
	}
}

func TestFetchPanicBecomesAnError(t *testing.T) {
	l := batch.New(func(context.Context, []string) (map[string]string, error) { panic("bug") }, 4, time.Minute)
	if _, _, err := l.Load(context.Background(), "a"); err == nil {
		t.Fatal("Load answered by a panicking fetch returned no error")
	}
	// The Loader still works: the panic did not leave a worker counted but gone.
	if _, _, err := l.Load(context.Background(), "b"); err == nil {
		t.Fatal("second Load returned no error")
	}
}

// TestCancelledCallerLeavesOthersServed cancels one caller while the fetch it is part of is
// held: it returns its context's error at once, and the other caller of that batch still gets
// its value, since the fetch does not inherit a single caller's cancellation.
func TestCancelledCallerLeavesOthersServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{}) // one send lets one fetch finish
		started := make(chan struct{}, 4)
		var fetchErr atomic.Value
		l := batch.New(func(ctx context.Context, keys []string) (map[string]string, error) {
			started <- struct{}{}
			<-release
			if err := ctx.Err(); err != nil {
				fetchErr.Store(err)
			}
			out := map[string]string{}
			for _, k := range keys {
				out[k] = "v-" + k
			}
			return out, nil
		}, 4, time.Minute)
		blocker := loadAll(l, []string{"blocker"})
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		gone := make(chan error, 1)
		go func() {
			_, _, err := l.Load(ctx, "gone")
			gone <- err
		}()
		waitQueued(t, l, 1) // "gone" is queued before "stays", so they share the next fetch
		stays := loadAll(l, []string{"stays"})
		waitQueued(t, l, 2)
		release <- struct{}{}
		<-started // the second fetch, holding "gone" and "stays", is held
		cancel()
		synctest.Wait()
		select {
		case err := <-gone:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled Load = %v, want context.Canceled", err)
			}
		default:
			t.Fatal("cancelled Load did not return")
		}
		release <- struct{}{}
		if got := stays()["stays"]; got != "v-stays" {
			t.Errorf("other caller of the batch got %q", got)
		}
		blocker()
		if err := fetchErr.Load(); err != nil {
			t.Errorf("fetch context ended with %v: one caller's cancellation reached the batch", err)
		}
	})
}

// TestFetchEndsWhenEveryCallerHasGone holds a fetch for two callers: it goes on when one of
// them gives up, and its context ends once both have, so that a hung query does not hold the
// Loader up for callers nobody is waiting for.
func TestFetchEndsWhenEveryCallerHasGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{}, 4)
		ended := make(chan error, 4)
		l := batch.New(func(ctx context.Context, keys []string) (map[string]string, error) {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				ended <- ctx.Err()
				return nil, ctx.Err()
			}
			return map[string]string{}, nil
		}, 4, time.Minute)
		blocker := loadAll(l, []string{"blocker"})
		<-started
		ctx1, cancel1 := context.WithCancel(context.Background())
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Hour)
		defer cancel2()
		for _, ctx := range []context.Context{ctx1, ctx2} {
			go func() { _, _, _ = l.Load(ctx, "k") }()
		}
		waitQueued(t, l, 2)
		release <- struct{}{}
		<-started // the second fetch, for both callers, is held
		cancel1()
		synctest.Wait()
		select {
		case err := <-ended:
			t.Fatalf("fetch ended (%v) while a caller was still waiting", err)
		default:
		}
		cancel2()
		synctest.Wait()
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("fetch context ended with %v, want context.Canceled", err)
			}
		default:
			t.Fatal("fetch went on after every caller had gone")
		}
		blocker()
		close(release)
		// The Loader is free again.
		if _, _, err := l.Load(context.Background(), "after"); err != nil {
			t.Errorf("Load after the abandoned fetch: %v", err)
		}
	})
}

// TestStuckFetchTimesOut holds a fetch until its context ends, for a caller that never gives
// up: the fetch is cut off at the Loader's timeout, its caller gets the error, and lookups
// queued behind it are served instead of waiting for ever.
func TestStuckFetchTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stuck atomic.Bool
		stuck.Store(true)
		started := make(chan struct{})
		l := batch.New(func(ctx context.Context, keys []string) (map[string]string, error) {
			if stuck.CompareAndSwap(true, false) {
				close(started)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return map[string]string{keys[0]: "ok"}, nil
		}, 4, 50*time.Millisecond)
		first := make(chan error, 1)
		go func() {
			_, _, err := l.Load(context.Background(), "stuck")
			first <- err
		}()
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, _, err := l.Load(ctx, "next")
		if v != "ok" || err != nil {
			t.Errorf("Load queued behind a stuck fetch = %q, %v; want it served after the timeout", v, err)
		}
		if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Load of the stuck fetch = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestLoadWithEndedContext(t *testing.T) {
	r := &recorder{value: upper}
	l := batch.New(r.fetch, 4, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, found, err := l.Load(ctx, "a"); found || !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context = %v, %v; want context.Canceled", found, err)
	}
	if n := len(r.recorded()); n != 0 {
		t.Errorf("%d fetches for a caller that had gone, want none", n)
	}
	if v, _, err := l.Load(context.Background(), "b"); v != "v-b" || err != nil {
		t.Errorf("next Load = %q, %v", v, err)
	}
}

// BenchmarkLoad measures the Loader's own overhead per call with 32 concurrent callers and
// a fetch that does no work.
func BenchmarkLoad(b *testing.B) {
	l := batch.New(func(_ context.Context, keys []string) (map[string]string, error) {
		out := make(map[string]string, len(keys))
		for _, k := range keys {
			out[k] = k
		}
		return out, nil
	}, 32, time.Minute)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := l.Load(context.Background(), "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoadIdle measures one caller at a time, the idle service's case, where every Load
// finds nothing being fetched.
func BenchmarkLoadIdle(b *testing.B) {
	l := batch.New(func(_ context.Context, keys []string) (map[string]string, error) {
		return map[string]string{keys[0]: keys[0]}, nil
	}, 32, time.Minute)
	for b.Loop() {
		if _, _, err := l.Load(context.Background(), "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEachLooksKeysUpOneByOne(t *testing.T) {
	errDown := errors.New("database down")
	fetch := batch.Each(func(_ context.Context, key string) (string, bool, error) {
		switch key {
		case "missing":
			return "", false, nil
		case "broken":
			return "", false, errDown
		}
		return "v-" + key, true, nil
	})
	got, err := fetch(context.Background(), []string{"a", "missing", "b"})
	if err != nil || len(got) != 2 || got["a"] != "v-a" || got["b"] != "v-b" {
		t.Errorf("fetch = %v, %v; want a and b, missing left out", got, err)
	}
	if _, err := fetch(context.Background(), []string{"a", "broken"}); !errors.Is(err, errDown) {
		t.Errorf("fetch with a failing key = %v, want %v", err, errDown)
	}
}

type idKey struct{}

func TestFetchSeesEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		seen := make(chan []string, 4)
		l := batch.New(func(ctx context.Context, keys []int) (map[int]int, error) {
			var ids []string
			for _, c := range batch.Callers(ctx) {
				ids = append(ids, c.Value(idKey{}).(string))
			}
			seen <- ids
			if keys[0] == 0 {
				<-release // hold the first fetch so that the next calls queue into one batch
			}
			return map[int]int{}, nil
		}, 10, time.Second)
		go func() { _, _, _ = l.Load(context.WithValue(context.Background(), idKey{}, "first"), 0) }()
		if got := <-seen; len(got) != 1 || got[0] != "first" {
			t.Fatalf("first fetch saw callers %v", got)
		}
		done := make(chan struct{})
		for i, id := range []string{"a", "b", "c"} {
			go func() {
				_, _, _ = l.Load(context.WithValue(context.Background(), idKey{}, id), i+1)
				done <- struct{}{}
			}()
		}
		waitQueued(t, l, 3)
		close(release)
		got := <-seen
		slices.Sort(got)
		if strings.Join(got, ",") != "a,b,c" {
			t.Errorf("batched fetch saw callers %v, want a, b and c", got)
		}
		for range 3 {
			<-done
		}
	})
}
