// Package migrations holds the customers database's migrations, one file each, named and
// identified by a UTC timestamp. They are append-only: a migration that has shipped is never
// edited; a change is a new migration. Each declares the table structs it needs, as they were
// at that point, so that later changes to the store's models cannot alter history.
package migrations

import "github.com/go-gormigrate/gormigrate/v2"

// All returns the migrations in the order they apply: the schema, then, when demo is true, the
// demo users.
func All(demo bool) []*gormigrate.Migration {
	all := []*gormigrate.Migration{
		createUsers(),
		createSessions(),
		createLoginFailures(),
		createOutbox(),
	}
	if demo {
		all = append(all, demoUsers())
	}
	return all
}

// DemoRows are the rows the demo migration creates, by table: production refuses to serve a
// database that holds any of them.
func DemoRows() map[string][]string {
	return map[string][]string{"users": {DemoAdmin1ID, DemoAdmin2ID, DemoNonAdmin3ID, DemoNonAdmin4ID}}
}
