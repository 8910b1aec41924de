package customer_test

import (
	"testing"

	"github.com/acme/shop/foundation/deptest"
)

// TestFreeOfTransport proves that the domain depends on no transport, storage or idempotency
// package, and does not name the idempotency of requests.
func TestFreeOfTransport(t *testing.T) {
	deptest.Domain(t)
}
