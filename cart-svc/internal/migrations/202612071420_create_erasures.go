package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// createErasures creates the erasures' tables: erased_users, a tombstone per deleted user
// whose data cart erased (no cart write for them lands after it), and handled_events, the ids
// of the events applied, so that a repeat delivery is a no-op. Both are written in the
// erasure's transaction.
func createErasures() *gormigrate.Migration {
	type erasedUser struct {
		UserID   string    `gorm:"type:varchar(36);primaryKey"`
		ErasedAt time.Time `gorm:"not null"`
	}
	type handledEvent struct {
		ID        string    `gorm:"type:varchar(36);primaryKey"`
		HandledAt time.Time `gorm:"not null;index:handled_events_handled_at_idx"`
	}
	return &gormigrate.Migration{
		ID: "202612071420_create_erasures",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&erasedUser{}, &handledEvent{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("erased_users", "handled_events")
		},
	}
}
