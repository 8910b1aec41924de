package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// createProducts creates the catalog. Prices are exact: integer cents, never floats. The
// (created_at, id) index serves the list's keyset pagination.
func createProducts() *gormigrate.Migration {
	type product struct {
		ID           string    `gorm:"type:varchar(36);primaryKey;index:products_created_at_id_idx,priority:2"`
		Name         string    `gorm:"type:varchar(200);not null"`
		Description  string    `gorm:"type:varchar(2000);not null;default:''"`
		PriceCents   int64     `gorm:"not null;check:products_price_cents_check,price_cents > 0 AND price_cents <= 100000000"`
		CurrencyCode string    `gorm:"type:varchar(3);not null;default:'USD'"`
		CreatedAt    time.Time `gorm:"not null;index:products_created_at_id_idx,priority:1"`
		UpdatedAt    time.Time `gorm:"not null"`
	}
	return &gormigrate.Migration{
		ID: "202611270001_create_products",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&product{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("products")
		},
	}
}
