package database

import "time"

// Timestamps are a row's created_at and updated_at columns, for the store's row structs to
// embed. The domain sets both from its own clock (the one its tests control), so gorm's
// automatic timestamps are off: a create keeps the times it is given, and an update changes
// updated_at only when the domain says so.
type Timestamps struct {
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}
