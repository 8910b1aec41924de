package migrations_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

type snapshot struct {
	Products []struct {
		ID, Name   string
		PriceCents int64
	}
	Items []struct {
		UserID, ProductID string
		Quantity          int32
	}
}

func take(t *testing.T, db *gorm.DB) snapshot {
	t.Helper()
	var s snapshot
	if err := db.Table("products").Order("id").Find(&s.Products).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Table("cart_items").Order("id").Find(&s.Items).Error; err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMigrations runs every migration up, down and up again, and checks that the demo catalog
// and carts are the same on every fresh database, cover every demo user, and are absent when
// demo data is off.
func TestMigrations(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		dbtest.Stairway(t, dbtest.Open(t, dialect), migrations.All(true))

		demo, none := dbtest.DemoData(t, dialect, migrations.All, take)
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
