package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// createCartItems creates the carts' lines. A user's cart is the set of their lines; there is
// no cart row to create first. The unique (user_id, product_id) index is what makes concurrent
// adds merge into one line (an upsert), and the ever-increasing id keeps lines in the order
// they were first added. Deleting a product deletes its lines by cascade.
func createCartItems() *gormigrate.Migration {
	type product struct {
		ID string `gorm:"type:varchar(36);primaryKey"`
	}
	type cartItem struct {
		ID        int64     `gorm:"primaryKey;autoIncrement"`
		UserID    string    `gorm:"type:varchar(36);not null;uniqueIndex:cart_items_user_id_product_id_key,priority:1"`
		ProductID string    `gorm:"type:varchar(36);not null;uniqueIndex:cart_items_user_id_product_id_key,priority:2;index:cart_items_product_id_idx"`
		Product   product   `gorm:"constraint:OnDelete:CASCADE"`
		Quantity  int32     `gorm:"not null;check:cart_items_quantity_check,quantity > 0"`
		CreatedAt time.Time `gorm:"not null"`
		UpdatedAt time.Time `gorm:"not null"`
	}
	return &gormigrate.Migration{
		ID: "202611270002_create_cart_items",
		Migrate: func(tx *gorm.DB) error {
			return tx.Migrator().CreateTable(&cartItem{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable("cart_items")
		},
	}
}
