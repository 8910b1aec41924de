package migrations_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

type (
	product struct {
		ID, Name   string
		PriceCents int64
	}
	item struct {
		UserID, ProductID string
		Quantity          int32
	}
	snapshot struct {
		Products []product
		Items    []item
	}
)

func take(t *testing.T, db *gorm.DB) snapshot {
	return snapshot{Products: dbtest.Rows[product](t, db, "products"), Items: dbtest.Rows[item](t, db, "cart_items")}
}

// TestMigrations runs every migration up, down and up again, and checks that the demo catalog
// and carts are the same on every fresh database, cover every demo user, and are absent when
// demo data is off.
func TestMigrations(t *testing.T) {
	dbtest.Migrations(t, migrations.All, take, func(t *testing.T, demo, none snapshot) {
		if n := len(demo.Products); n < 8 {
			t.Errorf("demo catalog has %d products, want at least 8", n)
		}
		users := map[string]bool{}
		for _, it := range demo.Items {
			users[it.UserID] = true
		}
		if len(users) != 4 {
			t.Errorf("demo carts for %d users, want 4", len(users))
		}
		if len(none.Products)+len(none.Items) != 0 {
			t.Errorf("demo data off, but %d products and %d lines exist", len(none.Products), len(none.Items))
		}
	})
}
