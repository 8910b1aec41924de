package cartdb_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acme/shop/foundation/database/dbtest"

	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/cartdb"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

// The store's hot paths, on every dialect: the cart read that ends every cart request (one
// caller at a time, and 32 at once, as under load, when reads share queries) and AddItem's
// upsert.

const benchUsers, benchLines = 100, 10

// benchStore returns a store whose benchUsers users each have a cart of benchLines lines.
func benchStore(b *testing.B, dialect string) (*cartdb.Store, []cart.Product, []string) {
	b.Helper()
	s := dbtest.Store(b, dialect, migrations.All(false), cartdb.New)
	ctx := context.Background()
	ps := make([]cart.Product, benchLines)
	for i := range ps {
		ps[i] = cart.Product{ID: uuid.NewString(), Name: fmt.Sprintf("Product %d", i), Price: cart.Cents(100 + i), CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateProduct(ctx, ps[i]); err != nil {
			b.Fatal(err)
		}
	}
	users := make([]string, benchUsers)
	var wg sync.WaitGroup
	for i := range users {
		users[i] = uuid.NewString()
		wg.Go(func() { // at once: PostgreSQL flushes their commits together
			for _, p := range ps {
				if err := s.AddItem(ctx, users[i], p.ID, 1, math.MaxInt32, t0); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return s, ps, users
}

// readCart reads a full cart, as every benchmark user has.
func readCart(s *cartdb.Store, userID string) error {
	c, err := s.Cart(context.Background(), userID)
	if err == nil && len(c.Lines) != benchLines {
		err = fmt.Errorf("cart has %d lines, want %d", len(c.Lines), benchLines)
	}
	return err
}

func BenchmarkCart(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, _, users := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			dbtest.Loop(b, func(i int) error { return readCart(s, users[i%benchUsers]) })
		})
	}
}

func BenchmarkCartConcurrent(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, _, users := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			dbtest.Concurrently(b, func(i int) error { return readCart(s, users[i%benchUsers]) })
		})
	}
}

func BenchmarkAddItem(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, ps, users := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			dbtest.Loop(b, func(i int) error {
				return s.AddItem(context.Background(), users[i%benchUsers], ps[i%benchLines].ID, 1, math.MaxInt32, t0)
			})
		})
	}
}
