package migrations_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/customers-svc/internal/migrations"
)

type demoRow struct {
	ID, Email, PasswordHash string
	IsAdmin                 bool
}

func demoRows(t *testing.T, db *gorm.DB) []demoRow { return dbtest.Rows[demoRow](t, db, "users") }

// TestMigrations runs every migration up, down and up again, and checks that the demo users
// are the same on every fresh database and absent when demo data is off.
func TestMigrations(t *testing.T) {
	dbtest.Migrations(t, migrations.All, demoRows, func(t *testing.T, demo, none []demoRow) {
		want := []demoRow{
			{ID: migrations.DemoAdmin1ID, Email: "admin1@email.com", IsAdmin: true},
			{ID: migrations.DemoAdmin2ID, Email: "admin2@email.com", IsAdmin: true},
			{ID: migrations.DemoNonAdmin3ID, Email: "nonadmin3@email.com"},
			{ID: migrations.DemoNonAdmin4ID, Email: "nonadmin4@email.com"},
		}
		if len(demo) != len(want) {
			t.Fatalf("got %d demo users, want %d", len(demo), len(want))
		}
		for i, w := range want {
			if got := demo[i]; got.ID != w.ID || got.Email != w.Email || got.IsAdmin != w.IsAdmin || got.PasswordHash == "" {
				t.Errorf("demo user %d = %+v, want %+v with a password hash", i, got, w)
			}
		}
		if len(none) != 0 {
			t.Errorf("demo data off, but %d users exist", len(none))
		}
	})
}
