package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/idempotency"
)

// addIdempotencyKeysReferenceIndex indexes the idempotency keys by the reference their write
// kept (an add's is the cart's owner), for the erasure of a deleted user's recorded answers
// (idempotency.AddReferenceIndex describes it).
func addIdempotencyKeysReferenceIndex() *gormigrate.Migration {
	return idempotency.AddReferenceIndex("202612071410_idempotency_keys_reference_index")
}
