package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/idempotency"
)

// addIdempotencyKeysReference adds to the idempotency keys the reference a key's request kept
// with its write, the ID of the product it created (idempotency.AddReference describes it).
func addIdempotencyKeysReference() *gormigrate.Migration {
	return idempotency.AddReference("202612011100_idempotency_keys_reference")
}
