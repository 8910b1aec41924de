package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// createLoginFailures creates the login throttle's counters: failures per bucket (an email or a
// client address) in a fixed window. They live in the database so that every replica counts
// against the same limit.
func createLoginFailures() *gormigrate.Migration {
	type loginFailure struct {
		Bucket     string    `gorm:"type:varchar(320);primaryKey"`
		Failures   int       `gorm:"not null"`
		WindowEnds time.Time `gorm:"not null;index:login_failures_window_ends_idx"`
	}
	return &gormigrate.Migration{
		ID: "202611300001_create_login_failures",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&loginFailure{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("login_failures")
		},
	}
}
