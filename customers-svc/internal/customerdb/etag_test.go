package customerdb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/etag"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
)

// TestConditionalWrites checks that a write whose precondition fails changes nothing, and that
// of concurrent writes with the same precondition exactly one wins: the check and the write
// are one step.
func TestConditionalWrites(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("cond@example.com"))
		stale := etag.Field(u.ETag())
		name := "Augusta"
		got, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &name}, stale, dbtest.T0.Add(time.Second), "")
		if err != nil || got.ETag() == u.ETag() {
			t.Fatalf("UpdateUser with the current etag = %v, %v; want a new etag", got, err)
		}
		other := "Mallory"
		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &other}, stale, dbtest.T0.Add(2*time.Second), ""); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("UpdateUser with a stale etag: %v, want ErrMismatch", err)
		}
		if err := s.DeleteUser(ctx, u.ID, stale); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("DeleteUser with a stale etag: %v, want ErrMismatch", err)
		}
		if now, err := s.User(ctx, u.ID); err != nil || now != got {
			t.Errorf("user after failed writes = %+v, %v; want %+v", now, err, got)
		}
		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &other}, etag.IfMatch(`"`+u.ID+`"`), dbtest.T0, ""); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("UpdateUser with a made-up etag: %v, want ErrMismatch", err)
		}

		// Two clients read the same state and write at once: one wins, the other is told.
		cur := etag.Field(got.ETag())
		dbtest.OneWins(t, 8, func(i int) error {
			n := string(rune('A' + i))
			_, err := s.UpdateUser(ctx, u.ID, customer.Changes{LastName: &n}, cur, dbtest.T0.Add(time.Duration(10+i)*time.Second), "")
			return err
		})

		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &name}, etag.IfMatch("*"), dbtest.T0.Add(time.Minute), ""); err != nil {
			t.Errorf("UpdateUser If-Match *: %v", err)
		}
		if err := s.DeleteUser(ctx, u.ID, etag.IfMatch("*")); err != nil {
			t.Errorf("DeleteUser If-Match *: %v", err)
		}
		if err := s.DeleteUser(ctx, u.ID, etag.IfMatch("*")); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("DeleteUser If-Match * of a deleted user: %v, want ErrNotFound", err)
		}
	})
}
