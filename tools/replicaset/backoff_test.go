package replicaset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/shop/foundation/poll"
)

func TestBackoffNext(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 30 * time.Second, Reset: time.Minute}
	tests := []struct {
		name        string
		prev, upFor time.Duration
		want        time.Duration
	}{
		{"first exit", 0, 10 * time.Second, time.Second},
		{"exits again soon: doubles", time.Second, 10 * time.Second, 2 * time.Second},
		{"never ready: doubles", 4 * time.Second, 0, 8 * time.Second},
		{"stops at Max", 16 * time.Second, 0, 30 * time.Second},
		{"stays at Max", 30 * time.Second, 0, 30 * time.Second},
		{"up for Reset: starts over", 30 * time.Second, time.Minute, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.next(tt.prev, tt.upFor); got != tt.want {
				t.Errorf("next(%v, %v) = %v, want %v", tt.prev, tt.upFor, got, tt.want)
			}
		})
	}
}

// TestBackoffGrowsWhileStartsFail: a replica that cannot start (here a binary that exits at
// once, as a bad configuration makes a service do) is started again and again, each time
// after twice the previous delay up to Max, until the set is closed.
func TestBackoffGrowsWhileStartsFail(t *testing.T) {
	s, r, log := failingReplica(t)
	s.superviseRestart(r, 0)
	poll.Until(t, func() error {
		if d := r.restartDelay(); d != s.cfg.Restart.Max {
			return fmt.Errorf("restart backoff %v, want it to grow to %v", d, s.cfg.Restart.Max)
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"1ms", "2ms", "4ms", "8ms"} {
		if !strings.Contains(log.String(), "customers-1: starting it again in "+d+"\n") {
			t.Errorf("the set's log has no restart after %s:\n%s", d, log.String())
		}
	}
	if r.PID() != 0 {
		t.Errorf("%s runs (pid %d) after Close", r.Name, r.PID())
	}
}

// lockedBuffer is a bytes.Buffer that several goroutines may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestKillEndsPendingRestarts: a replica killed (or stopped) while the set keeps trying to
// start it again stays down.
func TestKillEndsPendingRestarts(t *testing.T) {
	s, r, log := failingReplica(t)
	s.superviseRestart(r, 0)
	poll.Until(t, func() error {
		if r.restartDelay() == 0 {
			return errors.New("no restart tried yet")
		}
		return nil
	})
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() error {
		if !strings.Contains(log.String(), "customers-1: "+errHeld.Error()+": not starting it again") {
			return fmt.Errorf("the set's log does not say it gave up:\n%s", log.String())
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// failingReplica returns a set with one customers replica whose binary exits at once, as a
// service with a bad configuration does, and the set's own log; backoff 1 ms doubling to 8 ms.
func failingReplica(t *testing.T) (*Set, *Replica, *lockedBuffer) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "customers-svc"), []byte("#!/bin/sh\necho bad configuration\nexit 1\n"), 0o755); err != nil { //nolint:gosec // an executable script
		t.Fatal(err)
	}
	log := &lockedBuffer{} // all of it: the failed starts would push the first lines out of a tail
	cfg := Config{
		Bin: bin,
		Output: func(name string) io.Writer {
			if name == restartLog {
				return log
			}
			return io.Discard
		},
		Restart: Backoff{Initial: time.Millisecond, Max: 8 * time.Millisecond, Reset: time.Minute},
	}
	cfg.Isolate() // nothing answers /readyz there
	cfg.defaults()
	ns, err := startNameServer(cfg.DNSAddr)
	if err != nil {
		t.Fatal(err)
	}
	s := newSet(cfg, ns)
	r := s.newReplica("customers", 1, cfg.CustomersIPs[0])
	s.customers = append(s.customers, r)
	return s, r, log
}
