package cartdb_test

import (
	"testing"

	"github.com/acme/shop/foundation/deptest"
)

// TestFreeOfIdempotency proves that the store knows nothing of Idempotency-Keys: main hands it
// idempotency.Apply as its Commit.
func TestFreeOfIdempotency(t *testing.T) {
	deptest.Forbid(t, "github.com/acme/shop/foundation/idempotency", "google.golang.org/grpc")
	deptest.NotMentioned(t, "idempotency")
}
