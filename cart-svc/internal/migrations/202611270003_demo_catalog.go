package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// The demo users' IDs, as the customers service's demo migration creates them.
const (
	demoAdmin1    = "00000000-0000-7000-8000-000000000001"
	demoAdmin2    = "00000000-0000-7000-8000-000000000002"
	demoNonAdmin3 = "00000000-0000-7000-8000-000000000003"
	demoNonAdmin4 = "00000000-0000-7000-8000-000000000004"
)

// DemoProductIDs are the fixed IDs of the demo catalog, in catalog order. They are
// UUIDv7-shaped with a zero timestamp, so they sort before every product created later.
var DemoProductIDs = []string{
	"00000000-0000-7000-8000-000000000101",
	"00000000-0000-7000-8000-000000000102",
	"00000000-0000-7000-8000-000000000103",
	"00000000-0000-7000-8000-000000000104",
	"00000000-0000-7000-8000-000000000105",
	"00000000-0000-7000-8000-000000000106",
	"00000000-0000-7000-8000-000000000107",
	"00000000-0000-7000-8000-000000000108",
	"00000000-0000-7000-8000-000000000109",
	"00000000-0000-7000-8000-000000000110",
}

// demoCatalog adds a small catalog and a cart for each demo user. It is a data migration that
// only runs when demo data is enabled (CART_DEMO_DATA); production refuses to enable it.
func demoCatalog() *gormigrate.Migration {
	type product struct {
		ID           string `gorm:"primaryKey"`
		Name         string
		Description  string
		PriceCents   int64
		CurrencyCode string
		CreatedAt    time.Time
		UpdatedAt    time.Time
	}
	type cartItem struct {
		ID        int64 `gorm:"primaryKey"`
		UserID    string
		ProductID string
		Quantity  int32
		CreatedAt time.Time
		UpdatedAt time.Time
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	catalog := []struct {
		name, description string
		cents             int64
	}{
		{"Espresso Machine", "15-bar pump espresso maker with a steam wand for milk drinks.", 19999},
		{"Burr Coffee Grinder", "Conical steel burrs with 40 grind settings, from espresso to French press.", 8950},
		{"Pour-Over Kettle", "1-litre gooseneck kettle with a built-in thermometer.", 4200},
		{"Ceramic Mug Set", "Four 350 ml stoneware mugs, dishwasher safe.", 3499},
		{"Single-Origin Beans", "1 kg of washed Ethiopian Yirgacheffe, medium roast: jasmine and lemon.", 2450},
		{"Milk Frother", "Handheld frother for lattes and cappuccinos; two AA batteries included.", 1599},
		{"Cold Brew Bottle", "1-litre glass bottle with a fine mesh filter for overnight cold brew.", 2799},
		{"Digital Scale", "Coffee scale with a timer, 0.1 g resolution up to 2 kg.", 2999},
		{"Travel Tumbler", "Vacuum-insulated 470 ml tumbler; keeps coffee hot for six hours.", 2250},
		{"Barista Apron", "Waxed canvas apron with leather straps and three pockets.", 4500},
	}
	products := make([]product, len(catalog))
	for i, c := range catalog {
		products[i] = product{
			ID: DemoProductIDs[i], Name: c.name, Description: c.description, PriceCents: c.cents,
			CurrencyCode: "USD", CreatedAt: created, UpdatedAt: created,
		}
	}
	carts := []struct {
		user     string
		product  int
		quantity int32
	}{
		{demoAdmin1, 0, 1}, {demoAdmin1, 4, 2},
		{demoAdmin2, 1, 1},
		{demoNonAdmin3, 2, 1}, {demoNonAdmin3, 3, 2}, {demoNonAdmin3, 4, 3},
		{demoNonAdmin4, 5, 1}, {demoNonAdmin4, 8, 2},
	}
	items := make([]cartItem, len(carts))
	for i, c := range carts {
		items[i] = cartItem{UserID: c.user, ProductID: DemoProductIDs[c.product], Quantity: c.quantity, CreatedAt: created, UpdatedAt: created}
	}
	return &gormigrate.Migration{
		ID: "202611270003_demo_catalog",
		Migrate: func(tx *gorm.DB) error {
			if err := tx.Create(&products).Error; err != nil {
				return err
			}
			return tx.Create(&items).Error
		},
		Rollback: func(tx *gorm.DB) error {
			// Deleting the products deletes every cart line of them.
			return tx.Where("id IN ?", DemoProductIDs).Delete(&product{}).Error
		},
	}
}
