package customerdb_test

import (
	"errors"
	"sync"
	"testing"
	"time"

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
		got, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &name}, stale, t0.Add(time.Second), "")
		if err != nil || got.ETag() == u.ETag() {
			t.Fatalf("UpdateUser with the current etag = %v, %v; want a new etag", got, err)
		}
		other := "Mallory"
		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &other}, stale, t0.Add(2*time.Second), ""); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("UpdateUser with a stale etag: %v, want ErrMismatch", err)
		}
		if err := s.DeleteUser(ctx, u.ID, stale); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("DeleteUser with a stale etag: %v, want ErrMismatch", err)
		}
		if now, err := s.User(ctx, u.ID); err != nil || now != got {
			t.Errorf("user after failed writes = %+v, %v; want %+v", now, err, got)
		}
		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &other}, etag.IfMatch(`"`+u.ID+`"`), t0, ""); !errors.Is(err, etag.ErrMismatch) {
			t.Errorf("UpdateUser with a made-up etag: %v, want ErrMismatch", err)
		}

		// Two clients read the same state and write at once: one wins, the other is told.
		cur := etag.Field(got.ETag())
		var (
			wg   sync.WaitGroup
			errs = make([]error, 8)
		)
		for i := range errs {
			wg.Go(func() {
				n := string(rune('A' + i))
				_, errs[i] = s.UpdateUser(ctx, u.ID, customer.Changes{LastName: &n}, cur, t0.Add(time.Duration(10+i)*time.Second), "")
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, etag.ErrMismatch):
				t.Errorf("concurrent UpdateUser: %v, want nil or ErrMismatch", err)
			}
		}
		if wins != 1 {
			t.Errorf("%d of %d concurrent updates with one etag won, want 1", wins, len(errs))
		}

		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &name}, etag.IfMatch("*"), t0.Add(time.Minute), ""); err != nil {
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
