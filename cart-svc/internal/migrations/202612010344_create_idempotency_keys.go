package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/idempotency"
)

// createIdempotencyKeys creates the table of foundation/idempotency's Store, which keeps the
// Idempotency-Keys of cart's callers (idempotency.CreateTable describes it).
func createIdempotencyKeys() *gormigrate.Migration {
	return idempotency.CreateTable("202612010344_create_idempotency_keys")
}
