package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/acme/shop/foundation/database"
)

// OutboxTable is the outbox's table.
const OutboxTable = "outbox"

// Message is an event on its way: written to the outbox in the transaction of the change it
// tells of, then published by a Relay.
type Message struct {
	// ID is the event's id, unique: the message's Nats-Msg-Id, by which JetStream drops a
	// repeat publication, and consumers a repeat delivery.
	ID string
	// Subject is where it is published.
	Subject string
	// Data is the event, encoded (protobuf).
	Data []byte
	// TraceParent is the W3C trace context of the request that caused it ("" untraced).
	TraceParent string
	// CreatedAt is when it was written.
	CreatedAt time.Time
}

// outboxRow is a row of the outbox table.
type outboxRow struct {
	ID          string `gorm:"primaryKey"`
	Subject     string
	Payload     []byte
	TraceParent string
	CreatedAt   time.Time `gorm:"autoCreateTime:false"`
	SentAt      *time.Time
}

func (outboxRow) TableName() string { return OutboxTable }

// CreateOutbox is the migration, under id, that creates the outbox table. A row is pending
// until JetStream has acknowledged it (sent_at NULL); the partial index finds the pending rows
// in order without reading the sent ones, and the index on sent_at serves their deletion after
// the retention.
func CreateOutbox(id string) *gormigrate.Migration {
	type outbox struct {
		ID          string     `gorm:"type:varchar(36);primaryKey;index:outbox_pending_idx,where:sent_at IS NULL"`
		Subject     string     `gorm:"type:varchar(255);not null"`
		Payload     []byte     `gorm:"not null"`
		TraceParent string     `gorm:"type:varchar(64);not null;default:''"`
		CreatedAt   time.Time  `gorm:"not null"`
		SentAt      *time.Time `gorm:"index:outbox_sent_at_idx"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(OutboxTable).Migrator().CreateTable(&outbox{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(OutboxTable)
		},
	}
}

// Add writes m to the outbox in tx, the transaction of the change m tells of: both commit, or
// neither does.
func Add(tx *gorm.DB, m Message) error {
	return tx.Create(&outboxRow{
		ID: m.ID, Subject: m.Subject, Payload: m.Data, TraceParent: m.TraceParent, CreatedAt: m.CreatedAt.UTC(),
	}).Error
}

// Publish sends m and returns once the broker has acknowledged it (stored it).
type Publish func(ctx context.Context, m Message) error

// RelayOptions tune a Relay.
type RelayOptions struct {
	// Publish sends each message; required.
	Publish Publish
	// Batch is how many rows one round claims; 100 by default.
	Batch int
	// Poll is how long the relay waits for new rows when it found none; 200 ms by default.
	Poll time.Duration
	// Backoff is the wait after a failed round, doubled while rounds fail; 100 ms to 5 s by
	// default.
	Backoff Backoff
	// Retention is how long a sent row is kept before Sweep deletes it; 24 h by default.
	Retention time.Duration
	// Log receives the failures.
	Log *slog.Logger
	// Now returns the current time; time.Now by default.
	Now func() time.Time
}

// Relay publishes the outbox: every replica runs one, each claiming rows the others do not
// hold, and marks a row sent only after the broker acknowledged it, so that a row is published
// at least once, whatever stops between the commit and the publication.
type Relay struct {
	db   *gorm.DB
	opts RelayOptions
	wake chan struct{}
}

// NewRelay returns a Relay of the outbox in db.
func NewRelay(db *gorm.DB, opts RelayOptions) *Relay {
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	}
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Relay{db: db, opts: opts, wake: make(chan struct{}, 1)}
}

// Wake has the relay look for new rows now rather than at its next poll: call it after a
// transaction that added one has committed.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes rows until ctx ends, retrying a failed round with back-off, forever.
func (r *Relay) Run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		n, err := r.Once(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			if failures == 1 || failures%20 == 0 {
				r.opts.Log.WarnContext(ctx, "publishing the outbox", "error", err, "failures", failures)
			}
			sleep(ctx, r.opts.Backoff.After(failures))
			continue
		case err != nil:
			return
		}
		if failures > 0 {
			r.opts.Log.InfoContext(ctx, "publishing the outbox again", "after_failures", failures)
		}
		failures = 0
		if n == r.opts.Batch {
			continue
		}
		t := time.NewTimer(r.opts.Poll)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Once publishes one batch of pending rows, oldest first, and says how many it marked sent.
// On PostgreSQL it claims them with FOR UPDATE SKIP LOCKED, in a transaction that marks them
// sent before it commits: another replica's relay skips them meanwhile, and a relay that dies
// before the commit leaves them pending for the next one (which publishes them again with the
// same id, a repeat JetStream drops). SQLite has one process per file: it reads, publishes and
// marks without a transaction, so that a slow broker never holds SQLite's single write lock.
func (r *Relay) Once(ctx context.Context) (int, error) {
	round := func(tx *gorm.DB) (int, error) {
		var rows []outboxRow
		q := tx.Where("sent_at IS NULL").Order("id").Limit(r.opts.Batch)
		if database.Dialect(tx) == "postgres" {
			q = q.Clauses(skipLocked)
		}
		if err := q.Find(&rows).Error; err != nil {
			return 0, err
		}
		var (
			sent   []string
			pubErr error
		)
		for _, row := range rows {
			m := Message{ID: row.ID, Subject: row.Subject, Data: row.Payload, TraceParent: row.TraceParent, CreatedAt: row.CreatedAt}
			if pubErr = r.opts.Publish(ctx, m); pubErr != nil {
				pubErr = fmt.Errorf("publish %s: %w", row.ID, pubErr)
				break
			}
			sent = append(sent, row.ID)
		}
		if len(sent) > 0 {
			if err := tx.Model(&outboxRow{}).Where("id IN ?", sent).Update("sent_at", r.opts.Now().UTC()).Error; err != nil {
				return 0, err
			}
		}
		return len(sent), pubErr
	}
	db := r.db.WithContext(ctx)
	if database.Dialect(db) != "postgres" {
		return round(db)
	}
	var (
		n      int
		pubErr error
	)
	err := db.Transaction(func(tx *gorm.DB) error {
		var err error
		n, err = round(tx)
		if n > 0 {
			// Commit the marks of what was published, whatever failed after.
			pubErr = err
			return nil
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, pubErr
}

// skipLocked claims rows that no other transaction holds, skipping the rest (PostgreSQL).
var skipLocked = clause.Locking{Strength: clause.LockingStrengthUpdate, Options: clause.LockingOptionsSkipLocked}

// SweepLock names the lock under which one replica at a time deletes old sent rows.
const SweepLock = "outbox sweep"

// Sweep deletes the rows sent longer than the retention ago, in batches, unless another
// replica is sweeping.
func (r *Relay) Sweep(ctx context.Context) error {
	before := r.opts.Now().UTC().Add(-r.opts.Retention)
	return database.DeleteInBatches(ctx, r.db, SweepLock, 1000, func(tx *gorm.DB, limit int) (int64, error) {
		res := tx.Where("id IN (?)", tx.Model(&outboxRow{}).Select("id").Where("sent_at IS NOT NULL AND sent_at <= ?", before).Order("sent_at").Limit(limit)).
			Delete(&outboxRow{})
		return res.RowsAffected, res.Error
	})
}

// Pending returns how many rows wait for the broker's acknowledgement, and when the oldest of
// them was written (zero when none waits).
func (r *Relay) Pending(ctx context.Context) (int64, time.Time, error) {
	var (
		n      int64
		oldest outboxRow
	)
	db := r.db.WithContext(ctx)
	if err := db.Model(&outboxRow{}).Where("sent_at IS NULL").Count(&n).Error; err != nil || n == 0 {
		return n, time.Time{}, err
	}
	if err := db.Where("sent_at IS NULL").Order("id").Limit(1).Find(&oldest).Error; err != nil {
		return 0, time.Time{}, err
	}
	return n, oldest.CreatedAt, nil
}

// Collector returns the outbox's gauges, read from the database at each scrape, named
// <namespace>_outbox_pending and <namespace>_outbox_oldest_seconds.
func (r *Relay) Collector(namespace string) prometheus.Collector {
	return &outboxCollector{
		relay: r,
		pending: prometheus.NewDesc(namespace+"_outbox_pending",
			"Events written to the outbox and not yet acknowledged by JetStream: growing, the broker is unreachable or the relay is stuck.", nil, nil),
		oldest: prometheus.NewDesc(namespace+"_outbox_oldest_seconds",
			"Age of the oldest event not yet acknowledged by JetStream (0 when none waits): how far behind the relay is.", nil, nil),
	}
}

type outboxCollector struct {
	relay           *Relay
	pending, oldest *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.relay.Pending(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, c.relay.opts.Now().Sub(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
