package ratelimit

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// CreateTable is the migration, under id, that creates a Limiter's table: one row per bucket
// (a caller's calls that write), the calls of its open window, and when that window ends. The
// index on window_ends serves the sweep of closed windows. It describes the table as this
// version of the Limiter uses it: a later change needs a migration of its own.
func CreateTable(id string) *gormigrate.Migration {
	type rateLimit struct {
		Bucket     string    `gorm:"type:varchar(255);primaryKey"`
		Hits       int       `gorm:"not null"`
		WindowEnds time.Time `gorm:"not null;index:rate_limits_window_ends_idx"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().CreateTable(&rateLimit{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(Table)
		},
	}
}
