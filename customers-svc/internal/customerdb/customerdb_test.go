package customerdb_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/etag"

	"github.com/acme/shop/customers-svc/internal/customer"
	"github.com/acme/shop/customers-svc/internal/customerdb"
	"github.com/acme/shop/customers-svc/internal/migrations"
)

// each runs f on a store of its own, on every dialect.
var each = dbtest.EachStore(migrations.All(false), customerdb.New)

func newUser(email string) customer.User {
	id, _ := uuid.NewV7()
	return customer.User{ID: id.String(), Email: email, PasswordHash: "hash", FirstName: "Ada", LastName: "Lovelace", CreatedAt: dbtest.T0, UpdatedAt: dbtest.T0}
}

func mustCreate(t *testing.T, s *customerdb.Store, u customer.User) customer.User {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.Email, err)
	}
	return u
}

func TestUsers(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("ada@example.com"))

		got, err := s.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("User (-want +got):\n%s", diff)
		}
		if got, err := s.UserByEmail(ctx, "ada@example.com"); err != nil || got.ID != u.ID {
			t.Errorf("UserByEmail = %v, %v", got.ID, err)
		}
		if _, err := s.User(ctx, uuid.NewString()); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("User(unknown) error = %v, want ErrNotFound", err)
		}
		if err := s.CreateUser(ctx, newUser("ada@example.com")); !errors.Is(err, customer.ErrEmailTaken) {
			t.Errorf("CreateUser(duplicate email) error = %v, want ErrEmailTaken", err)
		}

		// A partial update changes only the given fields.
		name := "Augusta"
		later := dbtest.T0.Add(time.Hour)
		got, err = s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &name}, etag.None, later, "")
		if err != nil {
			t.Fatal(err)
		}
		want := u
		want.FirstName, want.UpdatedAt = name, later
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateUser (-want +got):\n%s", diff)
		}
		other := mustCreate(t, s, newUser("bob@example.com"))
		taken := "ada@example.com"
		if _, err := s.UpdateUser(ctx, other.ID, customer.Changes{Email: &taken}, etag.None, later, ""); !errors.Is(err, customer.ErrEmailTaken) {
			t.Errorf("UpdateUser(taken email) error = %v, want ErrEmailTaken", err)
		}
		if got, err := s.User(ctx, other.ID); err != nil || got.Email != "bob@example.com" {
			t.Errorf("after a rejected update: email %q, error %v; want bob@example.com", got.Email, err)
		}
		if _, err := s.UpdateUser(ctx, uuid.NewString(), customer.Changes{FirstName: &name}, etag.None, later, ""); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("UpdateUser(unknown) error = %v, want ErrNotFound", err)
		}

		if err := s.DeleteUser(ctx, u.ID, etag.None); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, u.ID, etag.None); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("second DeleteUser error = %v, want ErrNotFound", err)
		}
	})
}

func TestListUsers(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		var all []customer.User
		for i := range 7 {
			all = append(all, mustCreate(t, s, newUser(fmt.Sprintf("user%d@example.com", i))))
		}
		percent := mustCreate(t, s, newUser("100%_off@example.com"))
		all = append(all, percent)

		// Pages follow ID order and together return every user once.
		var seen []string
		var after *customer.Cursor
		for {
			page, err := s.ListUsers(ctx, customer.ListQuery{After: after, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page {
				seen = append(seen, u.ID)
			}
			if len(page) < 3 {
				break
			}
			after = &customer.Cursor{ID: page[len(page)-1].ID}
		}
		var want []string
		for _, u := range all {
			want = append(want, u.ID)
		}
		if diff := cmp.Diff(want, seen); diff != "" {
			t.Errorf("paged IDs (-want +got):\n%s", diff)
		}

		for _, tt := range []struct {
			search string
			want   int
		}{
			{"USER3", 1},       // case-insensitive
			{"lovelace", 8},    // last names match too
			{"%", 1},           // literal percent
			{"_", 1},           // literal underscore
			{"100%_", 1},       // both
			{`\`, 0},           // the escape character itself
			{"' OR '1'='1", 0}, // SQL stays data
			{"nobody", 0},
		} {
			got, err := s.ListUsers(ctx, customer.ListQuery{Search: tt.search, Limit: 100})
			if err != nil {
				t.Fatalf("search %q: %v", tt.search, err)
			}
			if len(got) != tt.want {
				t.Errorf("search %q found %d users, want %d", tt.search, len(got), tt.want)
			}
		}
	})
}

func TestSessions(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("ada@example.com"))
		live := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Hour)}
		old := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Minute)}
		for _, sess := range []customer.Session{live, old} {
			if err := s.CreateSession(ctx, sess, "hash", 10); err != nil {
				t.Fatal(err)
			}
		}
		now := dbtest.T0.Add(2 * time.Minute)

		got, err := s.SessionUser(ctx, live.ID, now)
		if err != nil || got.ID != u.ID || got.Email != u.Email || got.PasswordHash != "" {
			t.Errorf("SessionUser(live) = %+v, %v; want the user without the hash", got, err)
		}
		if _, err := s.SessionUser(ctx, old.ID, now); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("SessionUser(expired) error = %v, want ErrNotFound", err)
		}
		// Many sessions at once: only the live ones, each with its user.
		many, err := s.SessionUsers(ctx, []string{live.ID, old.ID, uuid.NewString()}, now)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]customer.User{live.ID: got}, many); diff != "" {
			t.Errorf("SessionUsers(live, expired, unknown) (-want +got):\n%s", diff)
		}
		if err := s.DeleteExpiredSessions(ctx, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, old.ID, dbtest.T0); !errors.Is(err, customer.ErrNotFound) {
			t.Error("expired session survived DeleteExpiredSessions")
		}

		if err := s.SetPassword(ctx, u.ID, "new-hash", now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, live.ID, now); !errors.Is(err, customer.ErrNotFound) {
			t.Error("session survived a password change")
		}
		if got, err := s.User(ctx, u.ID); err != nil || got.PasswordHash != "new-hash" {
			t.Errorf("password hash = %q, error %v; want new-hash", got.PasswordHash, err)
		}
		if err := s.SetPassword(ctx, uuid.NewString(), "x", now); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("SetPassword(unknown) error = %v, want ErrNotFound", err)
		}

		again := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateSession(ctx, again, "new-hash", 10); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, again.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, again.ID, now); !errors.Is(err, customer.ErrNotFound) {
			t.Error("session survived DeleteSession")
		}

		last := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateSession(ctx, last, "new-hash", 10); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, u.ID, etag.None); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, last.ID, now); !errors.Is(err, customer.ErrNotFound) {
			t.Error("session survived its user's deletion")
		}
		if err := s.CreateSession(ctx, customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, "new-hash", 10); !errors.Is(err, customer.ErrUnauthenticated) {
			t.Errorf("CreateSession for a deleted user error = %v, want ErrUnauthenticated", err)
		}
	})
}

// TestConcurrentSessionLookups runs many token lookups at once, as under load, where they share
// queries: each gets its own user, and expired and deleted sessions are refused by every one.
// (That a lookup never joins a query that started before it is batch's TestLoadNeverJoinsARunningFetch.)
func TestConcurrentSessionLookups(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		const n = 40
		users := make([]customer.User, n)
		sessions := make([]customer.Session, n)
		for i := range n {
			users[i] = mustCreate(t, s, newUser(fmt.Sprintf("user%d@example.com", i)))
			sessions[i] = customer.Session{ID: uuid.NewString(), UserID: users[i].ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Duration(i+1) * time.Minute)}
			if err := s.CreateSession(ctx, sessions[i], "hash", len(sessions)); err != nil {
				t.Fatal(err)
			}
		}
		now := dbtest.T0.Add(n / 2 * time.Minute) // the first half has expired
		revoked := sessions[n-1]
		if err := s.DeleteSession(ctx, revoked.ID); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4*n)
		var wg sync.WaitGroup
		for round := range 4 {
			for i := range n {
				wg.Go(func() {
					got, err := s.SessionUser(ctx, sessions[i].ID, now)
					switch {
					case i == n-1 || i < n/2: // expires at or before now, or revoked
						if !errors.Is(err, customer.ErrNotFound) {
							errs <- fmt.Errorf("round %d: session %d (expired or revoked) = %v, %w; want ErrNotFound", round, i, got.ID, err)
						}
					case err != nil || got.ID != users[i].ID || got.Email != users[i].Email:
						errs <- fmt.Errorf("round %d: session %d = %q, %w; want user %q", round, i, got.ID, err, users[i].ID)
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

// TestSessionNeedsTheVerifiedPassword: a session is created only while the user's password
// hash is still the one the login verified; after a password change, creating it with the old
// hash fails and leaves no session, and every user keeps at most the cap of live sessions, the
// newest.
func TestSessionNeedsTheVerifiedPassword(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("ada@example.com"))
		if err := s.SetPassword(ctx, u.ID, "changed-hash", dbtest.T0); err != nil {
			t.Fatal(err)
		}
		stale := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Hour)}
		if err := s.CreateSession(ctx, stale, u.PasswordHash, 10); !errors.Is(err, customer.ErrUnauthenticated) {
			t.Errorf("CreateSession with the hash from before the change = %v, want ErrUnauthenticated", err)
		}
		if _, err := s.SessionUser(ctx, stale.ID, dbtest.T0); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("session created with a stale hash: lookup error %v, want ErrNotFound", err)
		}

		var ids []string
		for i := range 5 {
			id, _ := uuid.NewV7()
			at := dbtest.T0.Add(time.Duration(i) * time.Second)
			if err := s.CreateSession(ctx, customer.Session{ID: id.String(), UserID: u.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, "changed-hash", 3); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id.String())
		}
		for i, id := range ids {
			_, err := s.SessionUser(ctx, id, dbtest.T0)
			if alive := err == nil; alive != (i >= 2) {
				t.Errorf("session %d of 5 with a cap of 3: lookup error %v, want alive=%v", i+1, err, i >= 2)
			}
		}
	})
}

// TestEmailChangeRevokesOtherSessions: changing the email deletes the user's sessions except
// the one kept, in the same transaction; other changes keep them.
func TestEmailChangeRevokesOtherSessions(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("ada@example.com"))
		keep, other := uuid.NewString(), uuid.NewString()
		for _, id := range []string{keep, other} {
			if err := s.CreateSession(ctx, customer.Session{ID: id, UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Hour)}, u.PasswordHash, 10); err != nil {
				t.Fatal(err)
			}
		}
		name := "Augusta"
		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{FirstName: &name}, etag.None, dbtest.T0, keep); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, other, dbtest.T0); err != nil {
			t.Errorf("a name change revoked a session: %v", err)
		}
		email := "ada2@example.com"
		if _, err := s.UpdateUser(ctx, u.ID, customer.Changes{Email: &email}, etag.None, dbtest.T0, keep); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, keep, dbtest.T0); err != nil {
			t.Errorf("the kept session after an email change: %v", err)
		}
		if _, err := s.SessionUser(ctx, other, dbtest.T0); !errors.Is(err, customer.ErrNotFound) {
			t.Errorf("another session after an email change: %v, want ErrNotFound", err)
		}
	})
}

// TestLastAdminStays: of two admins, one demoted and the other deleted at the same moment,
// exactly one change succeeds and the other is ErrLastAdmin; the last admin can be neither
// demoted nor deleted.
func TestLastAdminStays(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		no := false
		admin := func(email string) customer.User {
			u := newUser(email)
			u.IsAdmin = true
			return mustCreate(t, s, u)
		}
		last := admin("first@example.com")
		for round := range 10 {
			pair := []customer.User{last, admin(fmt.Sprintf("a%d@example.com", round))}
			if round%2 == 1 {
				pair[0], pair[1] = pair[1], pair[0]
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Go(func() {
				_, errs[0] = s.UpdateUser(ctx, pair[0].ID, customer.Changes{IsAdmin: &no}, etag.None, dbtest.T0, "")
			})
			wg.Go(func() { errs[1] = s.DeleteUser(ctx, pair[1].ID, etag.None) })
			wg.Wait()
			switch {
			case errs[0] == nil && errors.Is(errs[1], customer.ErrLastAdmin):
				last = pair[1]
			case errs[1] == nil && errors.Is(errs[0], customer.ErrLastAdmin):
				last = pair[0]
			default:
				t.Fatalf("round %d: demote %v, delete %v; want exactly one ErrLastAdmin", round, errs[0], errs[1])
			}
		}
		if _, err := s.UpdateUser(ctx, last.ID, customer.Changes{IsAdmin: &no}, etag.None, dbtest.T0, ""); !errors.Is(err, customer.ErrLastAdmin) {
			t.Errorf("demoting the last admin = %v, want ErrLastAdmin", err)
		}
		if err := s.DeleteUser(ctx, last.ID, etag.None); !errors.Is(err, customer.ErrLastAdmin) {
			t.Errorf("deleting the last admin = %v, want ErrLastAdmin", err)
		}
		if got, err := s.User(ctx, last.ID); err != nil || !got.IsAdmin {
			t.Errorf("last admin = %+v, %v; want unchanged", got, err)
		}
	})
}

// TestSessionRacingPasswordChange: a session insert with the verified hash and a password
// change run at the same moment, many times: whichever commits first, no session is left.
func TestSessionRacingPasswordChange(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("ada@example.com"))
		hash := u.PasswordHash
		for round := range 50 {
			next := fmt.Sprintf("hash-%d", round)
			sess := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Hour)}
			var wg sync.WaitGroup
			var createErr, setErr error
			wg.Go(func() { createErr = s.CreateSession(ctx, sess, hash, 10) })
			wg.Go(func() { setErr = s.SetPassword(ctx, u.ID, next, dbtest.T0) })
			wg.Wait()
			if setErr != nil || (createErr != nil && !errors.Is(createErr, customer.ErrUnauthenticated)) {
				t.Fatalf("round %d: CreateSession %v, SetPassword %v", round, createErr, setErr)
			}
			if _, err := s.SessionUser(ctx, sess.ID, dbtest.T0); !errors.Is(err, customer.ErrNotFound) {
				t.Fatalf("round %d: a session created with the old hash outlived the password change (lookup error %v)", round, err)
			}
			hash = next
		}
	})
}

// TestSessionSweepRunsOnOneReplica: on PostgreSQL, while one replica is sweeping expired
// sessions, another replica's sweep skips its turn (it neither waits nor deletes); once the
// first is done, the next sweep deletes.
func TestSessionSweepRunsOnOneReplica(t *testing.T) {
	ctx := t.Context()
	var db *gorm.DB
	a := dbtest.Store(t, "postgres", migrations.All(false), func(g *gorm.DB) (*customerdb.Store, error) {
		db = g
		return customerdb.New(g)
	})
	b, err := customerdb.New(db)
	if err != nil {
		t.Fatal(err)
	}
	u := mustCreate(t, a, newUser("ada@example.com"))
	expired := customer.Session{ID: uuid.NewString(), UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Minute)}
	if err := a.CreateSession(ctx, expired, "hash", 10); err != nil {
		t.Fatal(err)
	}
	now := dbtest.T0.Add(time.Hour)
	sessions := func() int {
		t.Helper()
		return len(dbtest.Rows[struct{ ID string }](t, db, "sessions"))
	}

	// Replica a is in the middle of its sweep, holding the lock.
	sweeping, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var ranA bool
	var errA error
	wg.Go(func() {
		ranA, errA = database.Exclusively(ctx, db, customerdb.SessionSweepLock, func(*gorm.DB) error {
			close(sweeping)
			<-done
			return nil
		})
	})
	<-sweeping
	if err := b.DeleteExpiredSessions(ctx, now); err != nil {
		t.Fatalf("replica b's sweep during a's: %v", err)
	}
	if got := sessions(); got != 1 {
		t.Errorf("sessions after replica b's sweep during a's = %d, want 1 (b skips its turn)", got)
	}
	close(done)
	wg.Wait()
	if !ranA || errA != nil {
		t.Fatalf("replica a's sweep ran %v, error %v; want it to run", ranA, errA)
	}
	if err := b.DeleteExpiredSessions(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got := sessions(); got != 0 {
		t.Errorf("sessions after replica b's next sweep = %d, want 0", got)
	}
}

// TestConcurrentLoginsKeepTheCap: 20 sessions of one user created at once, as 20 concurrent
// logins, leave exactly the cap of live sessions, however their transactions interleave (ten
// rounds, as an overlap that breaks it is not in every round).
func TestConcurrentLoginsKeepTheCap(t *testing.T) {
	each(t, func(t *testing.T, s *customerdb.Store) {
		ctx := t.Context()
		u := mustCreate(t, s, newUser("ada@example.com"))
		const maxSessions = 3
		var all []string
		for round := range 10 {
			ids := make([]string, 20)
			var wg sync.WaitGroup
			for i := range ids {
				ids[i] = uuid.NewString()
				all = append(all, ids[i])
				wg.Go(func() {
					sess := customer.Session{ID: ids[i], UserID: u.ID, CreatedAt: dbtest.T0, ExpiresAt: dbtest.T0.Add(time.Hour)}
					if err := s.CreateSession(ctx, sess, u.PasswordHash, maxSessions); err != nil {
						t.Errorf("CreateSession %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			live := 0
			for _, id := range all {
				if _, err := s.SessionUser(ctx, id, dbtest.T0); err == nil {
					live++
				}
			}
			if live != maxSessions {
				t.Fatalf("round %d: live sessions after 20 concurrent logins = %d, want the cap, %d", round, live, maxSessions)
			}
		}
	})
}
