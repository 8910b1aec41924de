package poll_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/acme/shop/foundation/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	poll.Until(t, func() error {
		if calls++; calls < 5 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 5 {
		t.Errorf("cond called %d times, want 5: once more after it held, or fewer", calls)
	}
}

// failing records how a test ended; its deadline is soon, so that Until gives up quickly.
type failing struct {
	testing.TB
	deadline time.Time
	failed   string
}

func (f *failing) Helper() {}

func (f *failing) Deadline() (time.Time, bool) { return f.deadline, true }

func (f *failing) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestUntilFailsWithTheLastError: a condition that never holds fails the test before the
// test's deadline, saying why the condition did not hold.
func TestUntilFailsWithTheLastError(t *testing.T) {
	f := &failing{TB: t, deadline: time.Now().Add(5*time.Second + 200*time.Millisecond)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll.Until(f, func() error { return errors.New("not yet") })
	}()
	<-done
	if !strings.Contains(f.failed, "not yet") {
		t.Errorf("Until failed with %q, want the condition's last error", f.failed)
	}
	if time.Now().After(f.deadline) {
		t.Error("Until gave up after the test's deadline")
	}
}
