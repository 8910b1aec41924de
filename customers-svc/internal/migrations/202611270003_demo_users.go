package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// The demo users' fixed IDs. They are UUIDv7-shaped with a zero timestamp, so they sort before
// every real user. The cart service's demo carts use the same IDs.
const (
	DemoAdmin1ID    = "00000000-0000-7000-8000-000000000001"
	DemoAdmin2ID    = "00000000-0000-7000-8000-000000000002"
	DemoNonAdmin3ID = "00000000-0000-7000-8000-000000000003"
	DemoNonAdmin4ID = "00000000-0000-7000-8000-000000000004"
)

// demoPasswordHash is the argon2id hash (OWASP parameters) of the demo password "testPass123",
// computed once so that every fresh database gets the same rows.
const demoPasswordHash = //nolint:gosec // the published demo password, switched off in production
"$argon2id$v=19$m=19456,t=2,p=1$yO5oBLIOS/VeJG+zLP+f4A$d0NDvF1WPcDpBRgNav69l78YcM0gxy8Em7RzAXD1DUU"

// demoUsers adds the four demo accounts of the API contract. It is a data migration that only
// runs when demo data is enabled (CUSTOMERS_DEMO_DATA); production refuses to enable it.
func demoUsers() *gormigrate.Migration {
	type user struct {
		ID           string `gorm:"primaryKey"`
		Email        string
		PasswordHash string
		FirstName    string
		LastName     string
		IsAdmin      bool
		CreatedAt    time.Time
		UpdatedAt    time.Time
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	users := []user{
		{ID: DemoAdmin1ID, Email: "admin1@email.com", FirstName: "Alice", LastName: "Admin", IsAdmin: true},
		{ID: DemoAdmin2ID, Email: "admin2@email.com", FirstName: "Bob", LastName: "Admin", IsAdmin: true},
		{ID: DemoNonAdmin3ID, Email: "nonadmin3@email.com", FirstName: "Carol", LastName: "Customer"},
		{ID: DemoNonAdmin4ID, Email: "nonadmin4@email.com", FirstName: "Dave", LastName: "Customer"},
	}
	ids := make([]string, len(users))
	for i := range users {
		users[i].PasswordHash = demoPasswordHash
		users[i].CreatedAt = created
		users[i].UpdatedAt = created
		ids[i] = users[i].ID
	}
	return &gormigrate.Migration{
		ID: "202611270003_demo_users",
		Migrate: func(tx *gorm.DB) error {
			return tx.Create(&users).Error
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Where("id IN ?", ids).Delete(&user{}).Error
		},
	}
}
