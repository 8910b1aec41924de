package cartdb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/etag"

	"github.com/acme/shop/cart-svc/internal/cart"
	"github.com/acme/shop/cart-svc/internal/cartdb"
)

// TestConditionalProducts checks that a product write whose precondition fails changes nothing
// and that of concurrent writes with one etag exactly one wins.
func TestConditionalProducts(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		p := product(t, s, "Kettle", 4200)
		stale := etag.Field(p.ETag())
		price := cart.Cents(4300)
		got, err := s.UpdateProduct(ctx, p.ID, nil, nil, &price, stale, dbtest.T0.Add(time.Second))
		if err != nil || got.ETag() == p.ETag() {
			t.Fatalf("UpdateProduct with the current etag = %+v, %v; want a new etag", got, err)
		}
		cheap := cart.Cents(1)
		if _, err := s.UpdateProduct(ctx, p.ID, nil, nil, &cheap, stale, dbtest.T0.Add(2*time.Second)); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("UpdateProduct with a stale etag: %v, want ErrMismatch", err)
		}
		if err := s.DeleteProduct(ctx, p.ID, stale); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("DeleteProduct with a stale etag: %v, want ErrMismatch", err)
		}
		if now, err := s.Product(ctx, p.ID); err != nil || now != got {
			t.Errorf("product after failed writes = %+v, %v; want %+v", now, err, got)
		}
		cur := etag.Field(got.ETag())
		dbtest.OneWins(t, 8, func(i int) error {
			price := cart.Cents(5000 + i)
			_, err := s.UpdateProduct(ctx, p.ID, nil, nil, &price, cur, dbtest.T0.Add(time.Duration(10+i)*time.Second))
			return err
		})
		if err := s.DeleteProduct(ctx, p.ID, etag.IfMatch("*")); err != nil {
			t.Errorf("DeleteProduct If-Match *: %v", err)
		}
	})
}

// TestConditionalCart checks the same for the cart: its etag follows its lines and their
// products, a stale one changes nothing, and concurrent conditional changes are serialised.
func TestConditionalCart(t *testing.T) {
	each(t, func(t *testing.T, s *cartdb.Store) {
		ctx := t.Context()
		user := uuid.NewString()
		a, b := product(t, s, "A", 150), product(t, s, "B", 299)
		for _, p := range []cart.Product{a, b} {
			if err := s.AddItem(ctx, user, p.ID, 2, 99, dbtest.T0); err != nil {
				t.Fatal(err)
			}
		}
		before := cartOf(t, s, user)
		stale := etag.Field(before.ETag())
		if err := s.SetQuantity(ctx, user, a.ID, 3, stale, dbtest.T0); err != nil {
			t.Fatalf("SetQuantity with the current etag: %v", err)
		}
		after := cartOf(t, s, user)
		if after.ETag() == before.ETag() {
			t.Fatal("the cart's etag did not change with a quantity")
		}
		if err := s.SetQuantity(ctx, user, a.ID, 7, stale, dbtest.T0); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("SetQuantity with a stale etag: %v, want ErrMismatch", err)
		}
		if err := s.RemoveItem(ctx, user, a.ID, stale); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("RemoveItem with a stale etag: %v, want ErrMismatch", err)
		}
		if err := s.Clear(ctx, user, stale); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("Clear with a stale etag: %v, want ErrMismatch", err)
		}
		if now := cartOf(t, s, user); now.ETag() != after.ETag() {
			t.Errorf("cart after failed writes = %+v, want %+v", now, after)
		}

		// A product's new price is a new cart.
		price := cart.Cents(999)
		if _, err := s.UpdateProduct(ctx, b.ID, nil, nil, &price, etag.None, dbtest.T0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		repriced := cartOf(t, s, user)
		if repriced.ETag() == after.ETag() {
			t.Error("the cart's etag did not change with a product's price")
		}

		cur := etag.Field(repriced.ETag())
		dbtest.OneWins(t, 8, func(i int) error {
			return s.SetQuantity(ctx, user, a.ID, int32(10+i), cur, dbtest.T0)
		})
		cur = etag.Field(cartOf(t, s, user).ETag())
		dbtest.OneWins(t, 6, func(i int) error {
			if i%2 == 0 {
				return s.Clear(ctx, user, cur)
			}
			return s.RemoveItem(ctx, user, b.ID, cur)
		})
		if err := s.Clear(ctx, user, etag.IfMatch("*")); err != nil {
			t.Errorf("Clear If-Match *: %v", err)
		}
	})
}
