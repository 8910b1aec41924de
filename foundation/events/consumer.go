package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Outcome is what a handler did with an event it applied.
type Outcome struct {
	// Duplicate: the event had been handled before, and nothing changed.
	Duplicate bool
	// Occurred is when the event happened, for the lag metric.
	Occurred time.Time
}

// Handler applies one message's data. An error wrapped by Undecodable dead-letters the
// message; any other error has it redelivered after a back-off, however many times it takes.
type Handler func(ctx context.Context, data []byte) (Outcome, error)

// ConsumerOptions describe a durable consumer.
type ConsumerOptions struct {
	// Stream and Durable name the stream and the consumer; Subject filters the stream.
	Stream, Durable, Subject string
	// Streams are created (or updated) before the consumer.
	Streams Streams
	// Type names the events in the metrics ("user.deleted").
	Type string
	// Handle applies each message.
	Handle Handler
	// Backoff spaces the redeliveries of a message that failed: After(n) follows its n-th
	// failure. 500 ms to 30 s by default.
	Backoff Backoff
	// AckWait is how long the broker waits for an acknowledgement before it redelivers; 30 s
	// by default.
	AckWait time.Duration
	// Concurrency is how many messages of a fetched batch are applied at once (8 by default):
	// one at a time, a burst of events waits on one database commit after another. Handle must
	// then be safe for concurrent use, and serialize what must be serialized itself (cart takes
	// the user's lock).
	Concurrency int
	// Metrics count the outcomes; nil counts nothing.
	Metrics *ConsumerMetrics
	// Tracer traces each message's handling, as a child of the trace the message carries.
	Tracer trace.TracerProvider
	// Log receives the failures.
	Log *slog.Logger
}

// ConsumerMetrics count a service's consumed events.
type ConsumerMetrics struct {
	total *prometheus.CounterVec
	lag   *prometheus.HistogramVec
}

// NewConsumerMetrics returns the metrics <namespace>_events_total{type,result} and
// <namespace>_event_lag_seconds{type}.
func NewConsumerMetrics(namespace string) *ConsumerMetrics {
	return &ConsumerMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_total",
			Help: "Events consumed, by type and result: applied, duplicate (handled before: no effect), dead_letter (undecodable: set aside, look at it), error (will be redelivered).",
		}, []string{"type", "result"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "event_lag_seconds",
			Help:    "Time from an event (a user's deletion) to its effect here (the erasure committed): the contract bounds its 99th percentile by 10 s.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"type"}),
	}
}

// Init sets every result of typ to zero, so that rates over them are defined from the start.
func (m *ConsumerMetrics) Init(typ string) {
	for _, r := range []string{"applied", "duplicate", "dead_letter", "error"} {
		m.total.WithLabelValues(typ, r)
	}
	m.lag.WithLabelValues(typ)
}

// Collectors returns the metrics to register.
func (m *ConsumerMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.total, m.lag}
}

func (m *ConsumerMetrics) count(typ, result string) {
	if m != nil {
		m.total.WithLabelValues(typ, result).Inc()
	}
}

// Consume runs the durable consumer of opts until ctx ends: it creates (or updates) the
// consumer, then fetches and handles messages, and starts over after any failure, with
// back-off, so that a broker that is down or restarted is waited for.
func Consume(ctx context.Context, js jetstream.JetStream, opts ConsumerOptions) {
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	retry := Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	if !opts.Streams.EnsureUntil(ctx, js, opts.Log) {
		return
	}
	failures := 0
	for ctx.Err() == nil {
		err := consume(ctx, js, opts)
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			opts.Log.WarnContext(ctx, "consuming events", "consumer", opts.Durable, "error", err, "failures", failures)
		}
		sleep(ctx, retry.After(failures))
	}
}

// consume fetches and handles messages until a fetch fails.
func consume(ctx context.Context, js jetstream.JetStream, opts ConsumerOptions) error {
	c, err := js.CreateOrUpdateConsumer(ctx, opts.Stream, jetstream.ConsumerConfig{
		Durable: opts.Durable, FilterSubject: opts.Subject,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: opts.AckWait,
		// Never give up on a message that can be applied: it is redelivered until it is.
		MaxDeliver:    -1,
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", opts.Durable, err)
	}
	for ctx.Err() == nil {
		batch, err := c.Fetch(50, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		var (
			wg   sync.WaitGroup
			busy = make(chan struct{}, opts.Concurrency)
		)
		for msg := range batch.Messages() {
			busy <- struct{}{}
			wg.Go(func() {
				defer func() { <-busy }()
				handle(ctx, js, opts, msg)
			})
		}
		wg.Wait()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return nil
}

// handle applies one message and acknowledges it, or has it redelivered, or dead-letters it.
func handle(ctx context.Context, js jetstream.JetStream, opts ConsumerOptions, msg jetstream.Msg) {
	ctx = propagation.TraceContext{}.Extract(ctx, headerCarrier(msg.Headers()))
	ctx, span := opts.Tracer.Tracer("github.com/acme/shop/foundation/events").Start(ctx, "consume "+msg.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	log := opts.Log.With("consumer", opts.Durable, "msg_id", msg.Headers().Get(jetstream.MsgIDHeader))

	out, err := opts.Handle(ctx, msg.Data())
	switch {
	case errors.Is(err, errUndecodable):
		if dlErr := deadLetter(ctx, js, opts, msg, err); dlErr != nil {
			log.ErrorContext(ctx, "dead-lettering a message", "error", dlErr)
			_ = msg.NakWithDelay(opts.Backoff.Max)
			return
		}
		log.ErrorContext(ctx, "dead-lettered an undecodable message", "error", err)
		_ = msg.Term()
		opts.Metrics.count(opts.Type, "dead_letter")
	case err != nil:
		n := 1
		if md, mdErr := msg.Metadata(); mdErr == nil {
			n = int(min(md.NumDelivered, 1000))
		}
		delay := opts.Backoff.After(n)
		log.WarnContext(ctx, "applying an event failed; it will be redelivered", "error", err, "deliveries", n, "retry_in", delay)
		span.RecordError(err)
		_ = msg.NakWithDelay(delay)
		opts.Metrics.count(opts.Type, "error")
	default:
		// The effect has committed: a lost ack only brings a repeat, which is a no-op.
		if ackErr := msg.Ack(); ackErr != nil {
			log.WarnContext(ctx, "acknowledging an applied event", "error", ackErr)
		}
		if out.Duplicate {
			opts.Metrics.count(opts.Type, "duplicate")
			return
		}
		opts.Metrics.count(opts.Type, "applied")
		if opts.Metrics != nil && !out.Occurred.IsZero() {
			opts.Metrics.lag.WithLabelValues(opts.Type).Observe(max(0, time.Since(out.Occurred).Seconds()))
		}
	}
}

// deadLetter copies msg, its headers and the reason, to the consumer's dead-letter subject.
func deadLetter(ctx context.Context, js jetstream.JetStream, opts ConsumerOptions, msg jetstream.Msg, reason error) error {
	dl := nats.NewMsg(DeadLetterPrefix + opts.Durable)
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		if k != jetstream.MsgIDHeader {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(ReasonHeader, reason.Error())
	dl.Header.Set("Shop-Original-Subject", msg.Subject())
	var pubOpts []jetstream.PublishOpt
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		pubOpts = append(pubOpts, jetstream.WithMsgID("dead-"+id))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := js.PublishMsg(ctx, dl, pubOpts...)
	return err
}

// PublishTo returns the Publish of a Relay that publishes to js and waits for JetStream's
// acknowledgement, with the event id as Nats-Msg-Id and its trace context in the headers. When
// no stream answers (it was deleted, or never created because the broker was down at
// start-up), it creates the streams before it reports the failure, so that the retry lands.
func PublishTo(js jetstream.JetStream, streams Streams, timeout time.Duration) Publish {
	return func(ctx context.Context, m Message) error {
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Data
		if m.TraceParent != "" {
			msg.Header.Set(TraceParentHeader, m.TraceParent)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID))
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			if sErr := streams.Ensure(ctx, js); sErr != nil {
				return errors.Join(err, sErr)
			}
		}
		return err
	}
}

// TraceParent returns the W3C traceparent of ctx's span, "" when it has none, to keep with
// an outbox row.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// headerCarrier reads a trace context from NATS headers, whose keys are kept as written.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
