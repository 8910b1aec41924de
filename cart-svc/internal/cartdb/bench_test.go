package cartdb_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
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

func BenchmarkCart(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, _, users := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			i := 0
			defer dbtest.ReportCPU(b)()
			for b.Loop() {
				c, err := s.Cart(ctx, users[i%benchUsers])
				if err != nil || len(c.Lines) != benchLines {
					b.Fatalf("Cart = %d lines, %v", len(c.Lines), err)
				}
				i++
			}
		})
	}
}

func BenchmarkCartConcurrent(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, _, users := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			var next atomic.Int64 // callers ask for different keys, as many users would
			b.SetParallelism(16)  // 32 callers on 2 cores, as make bench's 32 connections
			b.ResetTimer()
			defer dbtest.ReportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					c, err := s.Cart(ctx, users[i%benchUsers])
					if err != nil || len(c.Lines) != benchLines {
						b.Errorf("Cart = %d lines, %v", len(c.Lines), err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkAddItem(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s, ps, users := benchStore(b, dialect)
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			i := 0
			defer dbtest.ReportCPU(b)()
			for b.Loop() {
				if err := s.AddItem(ctx, users[i%benchUsers], ps[i%benchLines].ID, 1, math.MaxInt32, t0); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
