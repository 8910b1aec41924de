package service_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/acme/shop/foundation/service"
)

// TestEvery: the loop runs its job on its ticker, not before, logs a failed run and runs again
// on the next tick, and returns once its context ends, so that the service stops it on
// shutdown.
func TestEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		var logs strings.Builder
		log := slog.New(slog.NewTextHandler(&logs, nil))
		const every = time.Minute
		loop := service.Every(every, log, "sweeping", func(context.Context) error {
			if runs.Add(1) == 1 {
				return errors.New("database down")
			}
			return nil
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			loop(ctx)
		}()
		synctest.Wait()
		if n := runs.Load(); n != 0 {
			t.Fatalf("%d runs before the first tick, want 0", n)
		}
		time.Sleep(every) // the bubble's clock moves on once every goroutine waits
		synctest.Wait()
		if n := runs.Load(); n != 1 || !strings.Contains(logs.String(), "database down") {
			t.Fatalf("after the first tick: %d runs, log %q; want 1 run and its error logged", n, logs.String())
		}
		time.Sleep(every)
		synctest.Wait()
		if n := runs.Load(); n != 2 {
			t.Fatalf("after the second tick: %d runs, want 2", n)
		}
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("the loop did not stop when its context ended")
		}
	})
}
