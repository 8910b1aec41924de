package grpcserver

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// UnavailableRetryAfter is the Retry-After of a call answered UNAVAILABLE because a dependency
// (the database) could not be reached: a PostgreSQL switchover takes a few seconds, a failover
// Patroni's TTL and a little more, and a client that waits this long before each retry sees
// the end of either without flooding the new primary.
const UnavailableRetryAfter = 2 * time.Second

// repeatPause is how long a call waits before its one repeat: long enough for the pool to
// have dropped the connection that failed and for a switchover's new primary to take writes.
const repeatPause = 250 * time.Millisecond

type repeatableKey struct{}

// WithRepeatable marks ctx's call as safe to run again from the start: package idempotency
// marks the calls that hold an Idempotency-Key, whose write commits with the key's mark and
// so cannot be made twice.
func WithRepeatable(ctx context.Context) context.Context {
	return context.WithValue(ctx, repeatableKey{}, true)
}

// repeatable reports whether a call to method with ctx may run its handler twice: a read, or
// a write WithRepeatable marks.
func repeatable(ctx context.Context, writes map[string]bool, method string) bool {
	marked, _ := ctx.Value(repeatableKey{}).(bool)
	return marked || !writes[method]
}

// unavailableCalls counts the calls that met an unavailable dependency.
func unavailableCalls() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "database_unavailable_calls_total",
		Help: "Calls whose database could not be reached or would not take writes (a PostgreSQL failover or switchover, a connection lost), by call (read, write: an RPC with a non-GET REST mapping) and outcome: recovered (its one repeat succeeded), failed (answered UNAVAILABLE, 503, with Retry-After). A rise of failed writes is write unavailability.",
	}, []string{"call", "outcome"})
	for _, call := range []string{"read", "write"} {
		for _, outcome := range []string{"recovered", "failed"} {
			c.WithLabelValues(call, outcome)
		}
	}
	return c
}

// repeatOnce is the innermost interceptor: a call whose handler fails because the database is
// unavailable (Options.Unavailable) runs once more after a short pause when it is safe to
// repeat (a read, or a write holding an Idempotency-Key), on a connection the pool makes anew,
// which finds the new primary after a switchover. A write without a key is not repeated: its
// transaction may have committed before the connection was lost, so it is answered
// UNAVAILABLE and the client decides. The handler errors reach it untranslated.
func repeatOnce(opts Options, counter *prometheus.CounterVec) grpc.UnaryServerInterceptor {
	writes := Writes(protoregistry.GlobalFiles)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		// A deadline of the server's own (a stuck batched lookup) is not repeated: the repeat
		// would most likely wait as long again.
		if err == nil || opts.Unavailable == nil || !opts.Unavailable(err) || ctx.Err() != nil ||
			errors.Is(err, context.DeadlineExceeded) {
			return resp, err
		}
		call := "read"
		if writes[info.FullMethod] {
			call = "write"
		}
		count := func(outcome string) {
			if counter != nil {
				counter.WithLabelValues(call, outcome).Inc()
			}
		}
		if !repeatable(ctx, writes, info.FullMethod) {
			count("failed")
			return resp, err
		}
		t := time.NewTimer(repeatPause)
		select {
		case <-ctx.Done():
			t.Stop()
			count("failed")
			return resp, err
		case <-t.C:
		}
		resp, err = handler(ctx, req)
		if err != nil && opts.Unavailable(err) {
			count("failed")
		} else {
			count("recovered")
		}
		return resp, err
	}
}
