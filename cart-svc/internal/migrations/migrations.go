// Package migrations holds the cart database's migrations, one file each, named and identified
// by a UTC timestamp. They are append-only: a migration that has shipped is never edited; a
// change is a new migration. Each declares the table structs it needs, as they were at that
// point, so that later changes to the store's models cannot alter history.
package migrations

import "github.com/go-gormigrate/gormigrate/v2"

// All returns the migrations in the order they apply: the schema, then, when demo is true, the
// demo catalog and carts.
func All(demo bool) []*gormigrate.Migration {
	all := []*gormigrate.Migration{
		createProducts(),
		createCartItems(),
		createIdempotencyKeys(),
		addIdempotencyKeysWritten(),
		addIdempotencyKeysReference(),
		addIdempotencyKeysCallerIndex(),
		createRateLimits(),
		addIdempotencyKeysReferenceIndex(),
		createErasures(),
	}
	if demo {
		all = append(all, demoCatalog())
	}
	return all
}

// DemoRows are the rows the demo migration creates, by table: production refuses to serve a
// database that holds any of them. The demo carts belong to the demo users, whom customers
// refuses likewise.
func DemoRows() map[string][]string {
	return map[string][]string{"products": DemoProductIDs}
}
