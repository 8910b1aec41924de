package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// createSessions creates the server-side state behind access tokens: one row per issued token,
// keyed by the token's jti. A token validates only while its row exists and has not expired,
// so logout deletes one row, a password change deletes the user's rows, and deleting a user
// deletes them by cascade.
func createSessions() *gormigrate.Migration {
	type user struct {
		ID string `gorm:"type:varchar(36);primaryKey"`
	}
	type session struct {
		ID        string    `gorm:"type:varchar(36);primaryKey"`
		UserID    string    `gorm:"type:varchar(36);not null;index:sessions_user_id_idx"`
		User      user      `gorm:"constraint:OnDelete:CASCADE"`
		ExpiresAt time.Time `gorm:"not null;index:sessions_expires_at_idx"`
		CreatedAt time.Time `gorm:"not null"`
	}
	return &gormigrate.Migration{
		ID: "202611270002_create_sessions",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&session{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("sessions")
		},
	}
}
