package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/idempotency"
)

// addIdempotencyKeysWritten adds to the idempotency keys whether a key's request committed its
// add (idempotency.AddWritten describes it).
func addIdempotencyKeysWritten() *gormigrate.Migration {
	return idempotency.AddWritten("202612011045_idempotency_keys_written")
}
