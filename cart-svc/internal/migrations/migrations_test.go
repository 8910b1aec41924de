package migrations_test

import (
	"testing"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

func TestStairway(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dbtest.Stairway(t, dbtest.Open(t, dialect), migrations.All())
		})
	}
}
