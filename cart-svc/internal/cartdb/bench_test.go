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
// upsert; and the catalog list.

const benchUsers, benchLines = 100, 10

// benchStore returns a store whose benchUsers users each have a cart of benchLines lines.
func benchStore(b *testing.B, dialect string) (*cartdb.Store, []cart.Product, []string) {
	b.Helper()
	s := dbtest.Store(b, dialect, migrations.All(false), cartdb.New)
	ctx := context.Background()
	ps := make([]cart.Product, benchLines)
	for i := range ps {
		ps[i] = cart.Product{ID: uuid.NewString(), Name: fmt.Sprintf("Product %d", i), Price: cart.Cents(100 + i), CreatedAt: dbtest.T0, UpdatedAt: dbtest.T0}
		if _, err := s.CreateProduct(ctx, ps[i]); err != nil {
			b.Fatal(err)
		}
	}
	users := make([]string, benchUsers)
	var wg sync.WaitGroup
	for i := range users {
		users[i] = uuid.NewString()
		wg.Go(func() { // at once: PostgreSQL flushes their commits together
			for _, p := range ps {
				if err := s.AddItem(ctx, users[i], p.ID, 1, math.MaxInt32, dbtest.T0); err != nil {
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
				return s.AddItem(context.Background(), users[i%benchUsers], ps[i%benchLines].ID, 1, math.MaxInt32, dbtest.T0)
			})
		})
	}
}

// benchCatalog is the catalog of BenchmarkListProducts: a few pages of products, one in ten
// with "kettle" in its name.
const benchCatalog = 250

// catalogStore returns a store with benchCatalog products.
func catalogStore(b *testing.B, dialect string) *cartdb.Store {
	b.Helper()
	s := dbtest.Store(b, dialect, migrations.All(false), cartdb.New)
	for i := range benchCatalog {
		name := fmt.Sprintf("Product %d", i)
		if i%10 == 0 {
			name = fmt.Sprintf("Kettle %d", i)
		}
		p := cart.Product{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Description: "A product for the benchmark.", Price: cart.Cents(100 + i), CreatedAt: dbtest.T0, UpdatedAt: dbtest.T0}
		if _, err := s.CreateProduct(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkListProducts reads one page as GET /api/v1/products does (page.DefaultSize + 1
// rows): the first page, a later page, and a search.
func BenchmarkListProducts(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		s := catalogStore(b, dialect)
		first, err := s.ListProducts(context.Background(), cart.ListQuery{Limit: 21})
		if err != nil {
			b.Fatal(err)
		}
		for _, tt := range []struct {
			name string
			q    cart.ListQuery
			want int
		}{
			{"first", cart.ListQuery{Limit: 21}, 21},
			{"after", cart.ListQuery{After: first[19].ID, Limit: 21}, 21},
			{"search", cart.ListQuery{Search: "kettle", Limit: 21}, 21},
		} {
			b.Run(dialect+"/"+tt.name, func(b *testing.B) {
				dbtest.Loop(b, func(int) error {
					ps, err := s.ListProducts(context.Background(), tt.q)
					if err == nil && len(ps) != tt.want {
						err = fmt.Errorf("%d products, want %d", len(ps), tt.want)
					}
					return err
				})
			})
		}
	}
}
