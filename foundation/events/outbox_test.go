package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/events"
)

// TestSweepDeletesOnlyRowsSentBeforeTheRetention sweeps an outbox holding a row sent longer
// than the retention ago, a row sent more recently and a row never sent (written long before
// both): only the first goes.
func TestSweepDeletesOnlyRowsSentBeforeTheRetention(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		ctx := t.Context()
		db := dbtest.Open(t, dialect)
		if err := database.Migrate(ctx, db, "test", []*gormigrate.Migration{events.CreateOutbox("1")}); err != nil {
			t.Fatal(err)
		}
		const retention = 24 * time.Hour
		rows := []struct {
			id      string
			written time.Time
		}{
			{"a-sent-long-ago", dbtest.T0},
			{"b-sent-recently", dbtest.T0},
			{"c-never-sent", dbtest.T0.Add(-30 * 24 * time.Hour)},
		}
		for _, r := range rows {
			if err := events.Add(db, events.Message{ID: r.id, Subject: "test.subject", Data: []byte("event"), CreatedAt: r.written}); err != nil {
				t.Fatal(err)
			}
		}
		// The broker acknowledges every row up to the one named stop, and refuses that one.
		stop := ""
		refused := errors.New("refused")
		now := dbtest.T0
		relay := events.NewRelay(db, events.RelayOptions{
			Retention: retention,
			Now:       func() time.Time { return now },
			Publish: func(_ context.Context, m events.Message) error {
				if m.ID == stop {
					return refused
				}
				return nil
			},
		})
		publish := func(at time.Time, until string) {
			t.Helper()
			now, stop = at, until
			if n, err := relay.Once(ctx); n != 1 || !errors.Is(err, refused) {
				t.Fatalf("Once at %v = %d, %v; want 1 row sent, then %v", at, n, err, refused)
			}
		}
		publish(dbtest.T0, "b-sent-recently")
		publish(dbtest.T0.Add(retention-time.Minute), "c-never-sent")

		now = dbtest.T0.Add(retention + time.Minute)
		if err := relay.Sweep(ctx); err != nil {
			t.Fatal(err)
		}

		var left []string
		if err := db.Table(events.OutboxTable).Order("id").Pluck("id", &left).Error; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b-sent-recently", "c-never-sent"}, left); diff != "" {
			t.Errorf("rows left after the sweep (-want +got):\n%s", diff)
		}
		if n, oldest, err := relay.Pending(ctx); err != nil || n != 1 || !oldest.Equal(rows[2].written) {
			t.Errorf("Pending = %d, %v, %v; want 1, %v", n, oldest, err, rows[2].written)
		}
	})
}
