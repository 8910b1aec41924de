package customerdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
	"github.com/acme/shop/customers-svc/internal/migrations"
)

// The lookup behind every token validation, on every dialect: one caller at a time, and 32 at
// once, as under load, when lookups share queries.

const benchSessions = 100

// benchLookup makes a store of the given dialect with benchSessions users, each with one live
// session, and returns the lookup of the i-th session (modulo benchSessions).
func benchLookup(b *testing.B, dialect string) func(i int) error {
	b.Helper()
	s := dbtest.Store(b, dialect, migrations.All(false), customerdb.New)
	ctx := context.Background()
	ids := make([]string, benchSessions)
	for i := range ids {
		u := newUser(fmt.Sprintf("user%d@example.com", i))
		if err := s.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		ids[i] = uuid.NewString()
		if err := s.CreateSession(ctx, customer.Session{ID: ids[i], UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Hour)}, u.PasswordHash, len(ids)); err != nil {
			b.Fatal(err)
		}
	}
	return func(i int) error {
		_, err := s.SessionUser(ctx, ids[i%benchSessions], dbtest.T0)
		return err
	}
}

func BenchmarkSessionUser(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		lookup := benchLookup(b, dialect)
		b.Run(dialect, func(b *testing.B) { dbtest.Loop(b, lookup) })
	}
}

func BenchmarkSessionUserConcurrent(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		lookup := benchLookup(b, dialect)
		b.Run(dialect, func(b *testing.B) { dbtest.Concurrently(b, lookup) })
	}
}
