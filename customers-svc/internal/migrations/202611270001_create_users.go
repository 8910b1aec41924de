package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// createUsers creates the accounts table. IDs are UUIDv7, which sort by creation time, so the
// primary key alone serves the admin list's order and keyset pagination. Emails are stored
// normalised (trimmed, lower-cased), so a plain unique index makes them unique
// case-insensitively.
func createUsers() *gormigrate.Migration {
	type user struct {
		ID           string    `gorm:"type:varchar(36);primaryKey"`
		Email        string    `gorm:"type:varchar(254);not null;uniqueIndex:users_email_key"`
		PasswordHash string    `gorm:"type:varchar(255);not null"`
		FirstName    string    `gorm:"type:varchar(100);not null;default:''"`
		LastName     string    `gorm:"type:varchar(100);not null;default:''"`
		IsAdmin      bool      `gorm:"not null;default:false"`
		CreatedAt    time.Time `gorm:"not null"`
		UpdatedAt    time.Time `gorm:"not null"`
	}
	return &gormigrate.Migration{
		ID: "202611270001_create_users",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&user{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("users")
		},
	}
}
