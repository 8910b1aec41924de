package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/acme/shop/foundation/idempotency"
)

// addIdempotencyKeysCallerIndex indexes the idempotency keys by caller and age, for the count
// of a user's live keys against their cap (idempotency.AddCallerIndex describes it).
func addIdempotencyKeysCallerIndex() *gormigrate.Migration {
	return idempotency.AddCallerIndex("202612071200_idempotency_keys_caller_index")
}
