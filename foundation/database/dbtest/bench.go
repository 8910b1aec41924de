package dbtest

import (
	"syscall"
	"testing"
	"time"
)

// ReportCPU starts measuring the CPU time of the test process, on every thread, and returns
// the function that stops and reports it per operation, as cpu-ns/op: `defer
// dbtest.ReportCPU(b)()` just before a benchmark's loop. A store's wall time per operation is
// mostly the database's work and the round trip to it; its CPU time is what the store itself
// costs its service, and the noise of a shared machine moves it less.
func ReportCPU(b *testing.B) (stop func()) {
	b.Helper()
	start := cpuTime(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
