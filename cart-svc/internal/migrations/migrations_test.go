package migrations_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

func TestStairway(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dbtest.Stairway(t, dbtest.Open(t, dialect), migrations.All(true))
		})
	}
}

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

// TestDemoData checks that the demo catalog and carts are the same on every fresh database,
// cover every demo user, and are absent when demo data is off.
func TestDemoData(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			var runs []snapshot
			for range 2 {
				db := dbtest.Open(t, dialect)
				if err := database.Migrate(context.Background(), db, "cart", migrations.All(true)); err != nil {
					t.Fatal(err)
				}
				runs = append(runs, take(t, db))
			}
			if diff := cmp.Diff(runs[0], runs[1]); diff != "" {
				t.Errorf("demo data differs between fresh databases (-first +second):\n%s", diff)
			}
			if n := len(runs[0].Products); n < 8 {
				t.Errorf("demo catalog has %d products, want at least 8", n)
			}
			users := map[string]bool{}
			for _, it := range runs[0].Items {
				users[it.UserID] = true
			}
			if len(users) != 4 {
				t.Errorf("demo carts for %d users, want 4", len(users))
			}

			off := dbtest.Open(t, dialect)
			if err := database.Migrate(context.Background(), off, "cart", migrations.All(false)); err != nil {
				t.Fatal(err)
			}
			if s := take(t, off); len(s.Products)+len(s.Items) != 0 {
				t.Errorf("demo data off, but %d products and %d lines exist", len(s.Products), len(s.Items))
			}
		})
	}
}
