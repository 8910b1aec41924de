package cartdb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/etag"

	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/cartdb"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

// each runs f on a store of its own, on every dialect.
var each = dbtest.EachStore(migrations.All(false), cartdb.New)

func product(t *testing.T, s *cartdb.Store, name string, cents cart.Cents) cart.Product {
	t.Helper()
	p := cart.Product{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Description: "about " + name, Price: cents, CreatedAt: dbtest.T0, UpdatedAt: dbtest.T0}
	if _, err := s.CreateProduct(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProducts(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		p := product(t, s, "Kettle", 4200)
		got, err := s.Product(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("Product (-want +got):\n%s", diff)
		}
		if _, err := s.Product(ctx, uuid.NewString()); !errors.Is(err, cart.ErrProductNotFound) {
			t.Errorf("unknown product error = %v", err)
		}
		price := cart.Cents(4500)
		got, err = s.UpdateProduct(ctx, p.ID, nil, nil, &price, etag.None, dbtest.T0.Add(time.Hour))
		if err != nil || got.Price != 4500 || got.Name != "Kettle" {
			t.Errorf("UpdateProduct = %+v, %v", got, err)
		}
		if _, err := s.UpdateProduct(ctx, uuid.NewString(), nil, nil, &price, etag.None, dbtest.T0); !errors.Is(err, cart.ErrProductNotFound) {
			t.Errorf("update unknown error = %v", err)
		}
		for i := range 4 {
			product(t, s, fmt.Sprintf("Mug %d", i), 1000)
		}
		product(t, s, "50% off_sale", 100)
		for _, tt := range []struct {
			search string
			want   int
		}{{"MUG", 4}, {"about", 6}, {"%", 1}, {"_", 1}, {"' OR 1=1 --", 0}} {
			ps, err := s.ListProducts(ctx, cart.ListQuery{Search: tt.search, Limit: 100})
			if err != nil || len(ps) != tt.want {
				t.Errorf("search %q: %d products, %v; want %d", tt.search, len(ps), err, tt.want)
			}
		}
		page, err := s.ListProducts(ctx, cart.ListQuery{Limit: 2})
		if err != nil || len(page) != 2 || page[0].ID != p.ID {
			t.Fatalf("first page = %v, %v", page, err)
		}
		rest, err := s.ListProducts(ctx, cart.ListQuery{After: page[1].ID, Limit: 100})
		if err != nil || len(rest) != 4 {
			t.Errorf("after page 1: %d products, %v; want 4", len(rest), err)
		}
	})
}

func TestCartLines(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		user, other := uuid.NewString(), uuid.NewString()
		a, b := product(t, s, "A", 150), product(t, s, "B", 299)

		if c, err := s.Cart(ctx, user); err != nil || len(c.Lines) != 0 || c.UserID != user {
			t.Fatalf("empty cart = %+v, %v", c, err)
		}
		for _, add := range []struct {
			p cart.Product
			q int32
		}{{b, 2}, {a, 1}, {b, 3}} {
			if err := s.AddItem(ctx, user, add.p.ID, add.q, 99, dbtest.T0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddItem(ctx, other, a.ID, 7, 99, dbtest.T0); err != nil {
			t.Fatal(err)
		}
		c, err := s.Cart(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		want := []cart.Line{{ProductID: b.ID, Name: "B", UnitPrice: 299, Quantity: 5}, {ProductID: a.ID, Name: "A", UnitPrice: 150, Quantity: 1}}
		if diff := cmp.Diff(want, c.Lines); diff != "" {
			t.Errorf("lines in first-added order (-want +got):\n%s", diff)
		}

		if err := s.AddItem(ctx, user, b.ID, 95, 99, dbtest.T0); !errors.Is(err, cart.ErrQuantityLimit) {
			t.Errorf("add over the limit error = %v, want ErrQuantityLimit", err)
		}
		if err := s.AddItem(ctx, user, uuid.NewString(), 1, 99, dbtest.T0); !errors.Is(err, cart.ErrProductNotFound) {
			t.Errorf("add unknown product error = %v, want ErrProductNotFound", err)
		}
		if c2 := cartOf(t, s, user); !cmp.Equal(c.Lines, c2.Lines) {
			t.Errorf("rejected adds changed the cart: %+v", c2.Lines)
		}

		if err := s.SetQuantity(ctx, user, a.ID, 9, etag.None, dbtest.T0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetQuantity(ctx, user, uuid.NewString(), 1, etag.None, dbtest.T0); !errors.Is(err, cart.ErrItemNotFound) {
			t.Errorf("set quantity of a missing line error = %v", err)
		}
		if err := s.RemoveItem(ctx, user, b.ID, etag.None); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveItem(ctx, user, b.ID, etag.None); !errors.Is(err, cart.ErrItemNotFound) {
			t.Errorf("second remove error = %v", err)
		}
		c, _ = s.Cart(ctx, user)
		if diff := cmp.Diff([]cart.Line{{ProductID: a.ID, Name: "A", UnitPrice: 150, Quantity: 9}}, c.Lines); diff != "" {
			t.Errorf("after set and remove (-want +got):\n%s", diff)
		}

		// Catalog changes show in carts at once; deleting a product empties it from every cart.
		name := "A+"
		if _, err := s.UpdateProduct(ctx, a.ID, &name, nil, nil, etag.None, dbtest.T0); err != nil {
			t.Fatal(err)
		}
		if c := cartOf(t, s, user); len(c.Lines) != 1 || c.Lines[0].Name != "A+" {
			t.Errorf("cart lines %+v, want one named A+", c.Lines)
		}
		if err := s.DeleteProduct(ctx, a.ID, etag.None); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{user, other} {
			if c := cartOf(t, s, u); len(c.Lines) != 0 {
				t.Errorf("deleted product still in a cart: %+v", c.Lines)
			}
		}
		if err := s.DeleteProduct(ctx, a.ID, etag.None); !errors.Is(err, cart.ErrProductNotFound) {
			t.Errorf("second delete error = %v", err)
		}

		if err := s.AddItem(ctx, user, b.ID, 1, 99, dbtest.T0); err != nil {
			t.Fatal(err)
		}
		if err := s.Clear(ctx, user, etag.None); err != nil {
			t.Fatal(err)
		}
		if c := cartOf(t, s, user); len(c.Lines) != 0 {
			t.Errorf("cleared cart has lines: %+v", c.Lines)
		}
	})
}

// TestConcurrentAdds races adds to one line: the upsert loses none of them, and when together
// they exceed the limit, exactly as many succeed as fit.
func TestConcurrentAdds(t *testing.T) {
	for _, tt := range []struct {
		name         string
		adds, each   int32
		wantOK, want int32
	}{
		{"all fit", 50, 1, 50, 50},
		{"over the limit", 30, 5, 19, 95},
	} {
		t.Run(tt.name, func(t *testing.T) {
			each(t, func(t *testing.T, s *cartdb.Store) {
				ctx := t.Context()
				user := uuid.NewString()
				p := product(t, s, "Popular", 100)
				var (
					wg sync.WaitGroup
					ok atomic.Int32
				)
				for range tt.adds {
					wg.Go(func() {
						switch err := s.AddItem(ctx, user, p.ID, tt.each, 99, dbtest.T0); {
						case err == nil:
							ok.Add(1)
						case !errors.Is(err, cart.ErrQuantityLimit):
							t.Errorf("add: %v", err)
						}
					})
				}
				wg.Wait()
				c, err := s.Cart(ctx, user)
				if err != nil || ok.Load() != tt.wantOK || len(c.Lines) != 1 || c.Lines[0].Quantity != tt.want {
					t.Errorf("%d adds of %d succeeded, lines %+v, %v; want %d and one line of %d", ok.Load(), tt.each, c.Lines, err, tt.wantOK, tt.want)
				}
			})
		})
	}
}

// TestConcurrentCartReads reads many carts at once, as under load, where the reads share
// queries: each user gets exactly their own lines in first-added order, an empty cart is an
// empty list, and a read that starts after an add returns the line the add wrote.
func TestConcurrentCartReads(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		ps := []cart.Product{product(t, s, "A", 100), product(t, s, "B", 250), product(t, s, "C", 999)}
		const users = 30
		ids := make([]string, users)
		for i := range users {
			ids[i] = uuid.NewString()
			for j := range i % 4 { // 0 to 3 lines, added in reverse product order
				if err := s.AddItem(ctx, ids[i], ps[2-j].ID, int32(i+1), 99, dbtest.T0); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4*users)
		for range 4 {
			for i := range users {
				wg.Go(func() {
					c, err := s.Cart(ctx, ids[i])
					if err != nil || c.UserID != ids[i] || c.Lines == nil || len(c.Lines) != i%4 {
						errs <- fmt.Errorf("cart %d = %+v, %w; want %d lines", i, c, err, i%4)
						return
					}
					for j, l := range c.Lines {
						if l.ProductID != ps[2-j].ID || l.Quantity != int32(i+1) || l.UnitPrice != ps[2-j].Price {
							errs <- fmt.Errorf("cart %d line %d = %+v, want %s x%d", i, j, l, ps[2-j].Name, i+1)
						}
					}
				})
				// Reads that start after a write see it, even with other reads in flight.
				wg.Go(func() {
					user := uuid.NewString()
					if err := s.AddItem(ctx, user, ps[0].ID, 1, 99, dbtest.T0); err != nil {
						errs <- err
						return
					}
					if c, err := s.Cart(ctx, user); err != nil || len(c.Lines) != 1 {
						errs <- fmt.Errorf("read after own add = %+v, %w; want the added line", c, err)
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// cartOf returns the user's cart, failing the test when it cannot be read.
func cartOf(t *testing.T, s *cartdb.Store, user string) cart.Cart {
	t.Helper()
	c, err := s.Cart(t.Context(), user)
	if err != nil {
		t.Fatalf("Cart(%s): %v", user, err)
	}
	return c
}

// TestListProducts checks the catalog list's edges: an empty catalog, pages that end exactly at
// the last product, a cursor past the end or between IDs, searches with LIKE's wildcards and
// the escape character as literals, a search across pages, deleted products; and that every
// listed product is the one Product reads, to the microsecond of its times and its ETag.
func TestListProducts(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		list := func(q cart.ListQuery) []string {
			t.Helper()
			ps, err := s.ListProducts(ctx, q)
			if err != nil {
				t.Fatalf("ListProducts(%+v): %v", q, err)
			}
			if ps == nil {
				t.Errorf("ListProducts(%+v) = nil, want an empty list", q)
			}
			ids := []string{}
			for _, p := range ps {
				ids = append(ids, p.ID)
				want, err := s.Product(ctx, p.ID)
				if err != nil || p != want || p.ETag() != want.ETag() {
					t.Errorf("listed %+v, Product reads %+v, %v", p, want, err)
				}
			}
			return ids
		}
		if got := list(cart.ListQuery{Limit: 21}); len(got) != 0 {
			t.Errorf("empty catalog lists %v", got)
		}

		names := []string{"Mug", "mUG large", "50% off", "500 off", "a_b", "axb", `back\slash`, "plain"}
		ids := make([]string, len(names))
		for i, name := range names {
			p := cart.Product{
				ID: uuid.Must(uuid.NewV7()).String(), Name: name, Description: "D", Price: cart.Cents(100 + i),
				CreatedAt: dbtest.T0.Add(time.Duration(i) * time.Microsecond), UpdatedAt: dbtest.T0.Add(time.Duration(i) * time.Hour),
			}
			if _, err := s.CreateProduct(ctx, p); err != nil {
				t.Fatal(err)
			}
			ids[i] = p.ID
		}
		for _, tt := range []struct {
			name string
			q    cart.ListQuery
			want []string
		}{
			{"all", cart.ListQuery{Limit: 100}, ids},
			{"limit", cart.ListQuery{Limit: 3}, ids[:3]},
			{"page ending at the last", cart.ListQuery{After: ids[3], Limit: 4}, ids[4:]},
			{"one past the last page", cart.ListQuery{After: ids[3], Limit: 5}, ids[4:]},
			{"after the last", cart.ListQuery{After: ids[7], Limit: 5}, nil},
			{"after an unknown ID", cart.ListQuery{After: ids[2] + "0", Limit: 2}, ids[3:5]},
			{"after one before all", cart.ListQuery{After: "0", Limit: 1}, ids[:1]},
			{"case-insensitive", cart.ListQuery{Search: "MUG", Limit: 100}, ids[:2]},
			{"percent", cart.ListQuery{Search: "0%", Limit: 100}, ids[2:3]},
			{"underscore", cart.ListQuery{Search: "a_", Limit: 100}, ids[4:5]},
			{"backslash", cart.ListQuery{Search: `k\s`, Limit: 100}, ids[6:7]},
			{"description", cart.ListQuery{Search: "d", Limit: 100}, ids},
			{"no match", cart.ListQuery{Search: "' OR 1=1 --", Limit: 100}, nil},
			{"search, limit", cart.ListQuery{Search: "off", Limit: 1}, ids[2:3]},
			{"search after", cart.ListQuery{Search: "off", After: ids[2], Limit: 5}, ids[3:4]},
			{"search after the matches", cart.ListQuery{Search: "mug", After: ids[1], Limit: 5}, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if diff := cmp.Diff(append([]string{}, tt.want...), list(tt.q)); diff != "" {
					t.Errorf("IDs (-want +got):\n%s", diff)
				}
			})
		}

		if err := s.DeleteProduct(ctx, ids[1], etag.None); err != nil {
			t.Fatal(err)
		}
		want := append([]string{ids[0]}, ids[2:]...)
		if diff := cmp.Diff(want, list(cart.ListQuery{Limit: 100})); diff != "" {
			t.Errorf("after a delete (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(ids[:1], list(cart.ListQuery{Search: "mug", Limit: 100})); diff != "" {
			t.Errorf("search after a delete (-want +got):\n%s", diff)
		}
	})
}

// TestCommitWith makes the store's once-per-request writes through a Commit: CreateProduct and
// AddItem write through it, and when it finds the request's write made already and makes
// nothing, CreateProduct answers the product that write created and AddItem adds nothing.
func TestCommitWith(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		made := product(t, s, "Kettle", 4200)
		var (
			refs    []string
			already bool
		)
		s.CommitWith(func(_ context.Context, db *gorm.DB, write func(*gorm.DB) (string, error)) (string, error) {
			if already {
				return made.ID, nil
			}
			var ref string
			err := db.Transaction(func(tx *gorm.DB) error {
				var err error
				ref, err = write(tx)
				return err
			})
			refs = append(refs, ref)
			return ref, err
		})
		const user = "0195c3a0-0000-7000-8000-00000000000a"

		p := product(t, s, "Mug", 1000)
		if err := s.AddItem(ctx, user, p.ID, 1, 99, dbtest.T0); err != nil {
			t.Fatal(err)
		}
		// An add keeps the cart's owner as its reference (an erasure finds it by that).
		if diff := cmp.Diff([]string{p.ID, user}, refs); diff != "" {
			t.Errorf("references the writes returned (-want +got):\n%s", diff)
		}

		already = true
		again := cart.Product{ID: uuid.Must(uuid.NewV7()).String(), Name: "Mug", Price: 1000, CreatedAt: dbtest.T0, UpdatedAt: dbtest.T0}
		got, err := s.CreateProduct(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(made, got); diff != "" {
			t.Errorf("CreateProduct of a request made already (-want +got):\n%s", diff)
		}
		if _, err := s.Product(ctx, again.ID); !errors.Is(err, cart.ErrProductNotFound) {
			t.Errorf("the repeat's own product: %v, want ErrProductNotFound", err)
		}
		if err := s.AddItem(ctx, user, p.ID, 1, 99, dbtest.T0); err != nil {
			t.Fatal(err)
		}
		c, err := s.Cart(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Lines) != 1 || c.Lines[0].Quantity != 1 {
			t.Errorf("cart after a repeated add = %+v, want 1 of %s", c.Lines, p.ID)
		}
	})
}

// TestSweepHandledEvents deletes the ids of events handled before the cut-off and keeps the
// later ones: a repeat of a swept event is applied again, a repeat of a kept one is a
// duplicate.
func TestSweepHandledEvents(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		cutoff := dbtest.T0.Add(24 * time.Hour)
		old := cart.Erasure{EventID: uuid.NewString(), UserID: uuid.NewString()}
		recent := cart.Erasure{EventID: uuid.NewString(), UserID: uuid.NewString()}
		for e, at := range map[cart.Erasure]time.Time{old: cutoff.Add(-time.Second), recent: cutoff} {
			if duplicate, err := s.Erase(ctx, e, at); err != nil || duplicate {
				t.Fatalf("Erase(%v) = duplicate %v, %v; want applied", e, duplicate, err)
			}
		}

		if err := s.SweepHandledEvents(ctx, cutoff); err != nil {
			t.Fatal(err)
		}

		for _, tt := range []struct {
			name string
			e    cart.Erasure
			want bool
		}{
			{"handled before the cut-off: swept", old, false},
			{"handled at the cut-off: kept", recent, true},
		} {
			duplicate, err := s.Erase(ctx, tt.e, cutoff.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if duplicate != tt.want {
				t.Errorf("%s: a repeat is a duplicate: got %v, want %v", tt.name, duplicate, tt.want)
			}
		}
	})
}
