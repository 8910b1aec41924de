package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/events"
)

// createOutbox creates the transactional outbox: the events (UserDeleted) written in the same
// transaction as the change they tell of, until the relay has published them to NATS
// JetStream and, after a retention, deleted them.
func createOutbox() *gormigrate.Migration {
	return events.CreateOutbox("202612071400_create_outbox")
}
