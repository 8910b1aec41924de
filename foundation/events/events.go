// Package events carries events between services: a transactional outbox that a service writes
// in the same transaction as the change the event tells of, a relay that publishes the outbox
// to NATS JetStream, and a durable consumer on the other side. Delivery is at least once; the
// consumer's handler makes the effect exactly once by committing its change together with the
// event's id as handled.
//
// The broker is only ever a client connection here: the server (nats-server) runs elsewhere,
// embedded by the development tool of `make run` and by tests, never in a service binary.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The subjects and streams of the shop's events.
const (
	// UserDeletedSubject is where customers publishes UserDeleted (customers.v1).
	UserDeletedSubject = "shop.customers.user.deleted"
	// CustomersStream holds every event customers publishes (shop.customers.>).
	CustomersStream = "SHOP_CUSTOMERS"
	// DeadLetterStream holds the messages consumers could not decode, under
	// DeadLetterPrefix + the consumer's name.
	DeadLetterStream = "SHOP_DEAD_LETTERS"
	// DeadLetterPrefix begins every dead-letter subject.
	DeadLetterPrefix = "shop.deadletter."
	// duplicateWindow is how long JetStream remembers a message id to drop a repeat
	// publication: longer than a relay takes to retry a batch whose mark did not commit.
	duplicateWindow = 10 * time.Minute
)

// Header names the events carry.
const (
	// TraceParentHeader is the W3C trace context of the request that caused the event.
	TraceParentHeader = "traceparent"
	// ReasonHeader says why a message was dead-lettered.
	ReasonHeader = "Shop-Dead-Letter-Reason"
)

// Streams are the limits of the streams a service creates (Ensure).
type Streams struct {
	// Replicas is how many JetStream servers keep each stream: 1 in development, 3 on a
	// three-node production cluster.
	Replicas int
	// MaxAge is how long a message is kept, consumed or not.
	MaxAge time.Duration
}

// Ensure creates the shop's streams, or updates them to these limits: every service calls it
// at start-up, whichever starts first.
func (s Streams) Ensure(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name: CustomersStream, Subjects: []string{"shop.customers.>"},
			Description: "Events customers publishes from its outbox (UserDeleted).",
		},
		{
			Name: DeadLetterStream, Subjects: []string{DeadLetterPrefix + ">"},
			Description: "Messages a consumer could not decode, kept for a person to look at.",
		},
	} {
		cfg.Retention = jetstream.LimitsPolicy
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = s.Replicas
		cfg.MaxAge = s.MaxAge
		cfg.Duplicates = min(duplicateWindow, s.MaxAge)
		cfg.Discard = jetstream.DiscardOld
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// EnsureUntil calls Ensure until it succeeds, with back-off (the broker may be down), and
// reports whether it did before ctx ended.
func (s Streams) EnsureUntil(ctx context.Context, js jetstream.JetStream, log *slog.Logger) bool {
	retry := Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for n := 1; ctx.Err() == nil; n++ {
		err := s.Ensure(ctx, js)
		if err == nil {
			return true
		}
		if n == 1 || n%20 == 0 {
			log.WarnContext(ctx, "creating the NATS streams", "error", err, "attempts", n)
		}
		sleep(ctx, retry.After(n))
	}
	return false
}

// Connect returns a connection to the NATS server at url that never gives up: started while
// the server is down, it connects once the server is up, and it reconnects whenever the
// connection drops. Nothing is buffered while disconnected, so that a publication then fails
// at once, and its outbox row waits for the next attempt.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Backoff is an exponential back-off between Min and Max.
type Backoff struct {
	Min, Max time.Duration
}

// After returns the wait before attempt n (1 for the first retry): Min doubled n-1 times, at
// most Max.
func (b Backoff) After(n int) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errUndecodable marks a handler's error about a message that no attempt can apply.
var errUndecodable = errors.New("undecodable")

// Undecodable wraps err, a handler's error about a message it cannot decode: the consumer
// terminates the message and copies it to the dead-letter subject instead of redelivering it.
func Undecodable(err error) error { return fmt.Errorf("%w: %w", errUndecodable, err) }
