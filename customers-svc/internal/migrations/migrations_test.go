package migrations_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/customers-svc/internal/migrations"
)

func TestStairway(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dbtest.Stairway(t, dbtest.Open(t, dialect), migrations.All(true))
		})
	}
}

type demoRow struct {
	ID, Email, PasswordHash string
	IsAdmin                 bool
}

func demoRows(t *testing.T, db *gorm.DB) []demoRow {
	t.Helper()
	var rows []demoRow
	if err := db.Table("users").Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestDemoData checks that demo users are the same on every fresh database and absent when
// demo data is off.
func TestDemoData(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			var runs [][]demoRow
			for range 2 {
				db := dbtest.Open(t, dialect)
				if err := database.Migrate(context.Background(), db, "customers", migrations.All(true)); err != nil {
					t.Fatal(err)
				}
				runs = append(runs, demoRows(t, db))
			}
			if diff := cmp.Diff(runs[0], runs[1]); diff != "" {
				t.Errorf("demo data differs between fresh databases (-first +second):\n%s", diff)
			}
			want := []struct {
				id, email string
				admin     bool
			}{
				{migrations.DemoAdmin1ID, "admin1@email.com", true},
				{migrations.DemoAdmin2ID, "admin2@email.com", true},
				{migrations.DemoNonAdmin3ID, "nonadmin3@email.com", false},
				{migrations.DemoNonAdmin4ID, "nonadmin4@email.com", false},
			}
			if len(runs[0]) != len(want) {
				t.Fatalf("got %d demo users, want %d", len(runs[0]), len(want))
			}
			for i, w := range want {
				if got := runs[0][i]; got.ID != w.id || got.Email != w.email || got.IsAdmin != w.admin {
					t.Errorf("demo user %d = %+v, want %+v", i, got, w)
				}
			}

			off := dbtest.Open(t, dialect)
			if err := database.Migrate(context.Background(), off, "customers", migrations.All(false)); err != nil {
				t.Fatal(err)
			}
			if rows := demoRows(t, off); len(rows) != 0 {
				t.Errorf("demo data off, but %d users exist", len(rows))
			}
		})
	}
}
