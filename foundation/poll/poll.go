// Package poll waits, in tests, for a condition that real I/O makes true (a database
// answering, a server listening, a client reconnecting): it checks the condition again and
// again until it holds, rather than sleeping for a time a slower machine may need more of.
//
// Code that only waits on timers needs no polling: test it in a testing/synctest bubble,
// where synctest.Wait returns once every goroutine is blocked.
package poll

import (
	"testing"
	"time"
)

// limit bounds the wait of a condition that never holds; it is long because a condition
// that does hold returns as soon as it is seen, however slow the machine.
const limit = time.Minute

// margin is the time kept before the test binary's own deadline (go test -timeout) to report
// a condition that never held, rather than a panic with every goroutine's stack.
const margin = 5 * time.Second

// Until calls cond until it returns nil, and fails the test with cond's last error if it
// has not within a minute (sooner if the test's deadline comes first). cond runs on the
// caller's goroutine, so it may end the test at once with t.Fatal (the service it waits for
// has exited, say).
func Until(t testing.TB, cond func() error) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok && end.Add(-margin).Before(deadline) {
			deadline = end.Add(-margin)
		}
	}
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not done after %v: %v", time.Since(start).Round(time.Millisecond), err)
		}
		// The pause between two checks, not a wait for the condition: short at first, for
		// conditions that hold at once, then longer, to leave a slow machine's CPU to the
		// code under test.
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}
