package dbtest

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Loop runs a store benchmark: op b.N times, one call after the other, i counting from 0.
// Besides the time per op it reports the CPU time the test process spends per op, on every
// thread, as cpu-ns/op: a store's wall time is mostly the database's work and the round trip
// to it, its CPU time what the store costs its service, and the noise of a shared machine
// moves that less.
func Loop(b *testing.B, op func(i int) error) {
	b.Helper()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// Concurrently runs a store benchmark as under load: op b.N times from 16 goroutines per
// core (32 on 2 cores, as make bench's 32 connections), i counting up across them so that
// calls in flight together ask for different keys. It reports cpu-ns/op as Loop does.
func Concurrently(b *testing.B, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(int(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// reportCPU starts measuring the process's CPU time and returns the function that reports it
// per op.
func reportCPU(b *testing.B) (stop func()) {
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
