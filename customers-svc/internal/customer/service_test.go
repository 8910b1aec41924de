package customer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/permission"
	"github.com/acme/shop/foundation/validation"

	"github.com/acme/shop/customers-svc/internal/customer"
)

type env struct {
	svc    *customer.Service
	store  *memStore
	hasher *plainHasher
	now    time.Time
}

// testLimits are the throttle's limits in these tests.
var testLimits = customer.Limits{
	Window: time.Minute, PerEmailAddr: 3, PerAddr: 10, PerEmail: 6,
	RegisterWindow: time.Hour, RegisterPerAddr: 5,
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvLimits(t, testLimits)
}

func newEnvLimits(t *testing.T, limits customer.Limits) *env {
	t.Helper()
	e := &env{store: newMemStore(), hasher: &plainHasher{}, now: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	var seq int
	svc, err := customer.NewService(e.store, e.hasher, fakeTokens{}, customer.NewThrottle(newMemCounter(), limits), customer.Options{
		TokenTTL: 15 * time.Minute,
		Now:      func() time.Time { return e.now },
		NewID: func() string {
			seq++
			return fmt.Sprintf("00000000-0000-7000-8000-%012d", seq)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func (e *env) register(t *testing.T, email string, admin bool) customer.User {
	t.Helper()
	var caller *customer.Caller
	if admin {
		caller = &customer.Caller{IsAdmin: true}
	}
	u, err := e.svc.Register(context.Background(), caller, customer.NewUser{Email: email, Password: "password1", IsAdmin: admin}, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signUp registers a user, an admin if admin, and logs them in.
func (e *env) signUp(t *testing.T, email string, admin bool) (customer.User, customer.Caller) {
	t.Helper()
	return e.register(t, email, admin), e.login(t, email)
}

func (e *env) login(t *testing.T, email string) customer.Caller {
	t.Helper()
	res, err := e.svc.Login(context.Background(), email, "password1", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := e.svc.Authenticate(context.Background(), res.Token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "  Ada@Example.COM ", Password: "password1", FirstName: "Ada"}, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada@example.com" || u.PasswordHash == "password1" || u.IsAdmin {
		t.Errorf("registered %+v: want a normalised email, a hashed password and no admin rights", u)
	}
	if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "ADA@example.com", Password: "password1"}, "10.0.0.1"); !errors.Is(err, customer.ErrEmailTaken) {
		t.Errorf("duplicate email (other case) error = %v, want ErrEmailTaken", err)
	}

	tests := []struct {
		name   string
		caller *customer.Caller
		in     customer.NewUser
		want   error
		fields []string
	}{
		{"anonymous admin", nil, customer.NewUser{Email: "a@b.co", Password: "password1", IsAdmin: true}, permission.ErrDenied, nil},
		{"non-admin creates admin", &customer.Caller{UserID: "x"}, customer.NewUser{Email: "a@b.co", Password: "password1", IsAdmin: true}, permission.ErrDenied, nil},
		// Lengths and most malformed emails are the proto's rules, checked before the Service
		// is called (see the grpcapi tests); the domain's email check is the stricter one, and
		// the last two pass the proto's isEmail.
		{"display name", nil, customer.NewUser{Email: "Ada <a@b.co>", Password: "password1"}, nil, []string{"email"}},
		{"no domain dot", nil, customer.NewUser{Email: "a@localhost", Password: "password1"}, nil, []string{"email"}},
		{"two dots in a row", nil, customer.NewUser{Email: "a..b@example.com", Password: "password1"}, nil, []string{"email"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Register(ctx, tt.caller, tt.in, "10.0.0.1")
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(tt.fields, validation.Fields(err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := e.svc.Register(ctx, &customer.Caller{IsAdmin: true}, customer.NewUser{Email: "boss@b.co", Password: "password1", IsAdmin: true}, "10.0.0.1"); err != nil {
		t.Errorf("admin creating an admin: %v", err)
	}
}

// TestLoginFailuresLookAlike checks that an unknown email and a wrong password give the same
// error after the same work: one password verification each.
func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	e.register(t, "ada@example.com", false)
	before := e.hasher.verifications()
	_, errUnknown := e.svc.Login(context.Background(), "nobody@example.com", "password1", "a")
	afterUnknown := e.hasher.verifications()
	_, errWrong := e.svc.Login(context.Background(), "ada@example.com", "wrong-password", "b")
	afterWrong := e.hasher.verifications()
	if !errors.Is(errUnknown, customer.ErrUnauthenticated) || !errors.Is(errWrong, customer.ErrUnauthenticated) || errUnknown.Error() != errWrong.Error() {
		t.Errorf("unknown email: %v; wrong password: %v; want the same ErrUnauthenticated", errUnknown, errWrong)
	}
	if afterUnknown-before != 1 || afterWrong-afterUnknown != 1 {
		t.Errorf("verifications: unknown email %d, wrong password %d; want 1 and 1", afterUnknown-before, afterWrong-afterUnknown)
	}
}

// TestLoginThrottle: failures are limited per (email, address) and per address; a throttled
// attempt checks no password; the window ends.
func TestLoginThrottle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "ada@example.com", false)
	for range 3 {
		if _, err := e.svc.Login(ctx, "ada@example.com", "wrong-password", "10.0.0.9"); !errors.Is(err, customer.ErrUnauthenticated) {
			t.Fatalf("failure error = %v", err)
		}
	}
	// The pair's limit is reached: even the right password is refused from that address,
	// without checking it.
	before := e.hasher.verifications()
	_, err := e.svc.Login(ctx, "ADA@example.com", "password1", "10.0.0.9")
	var throttled *customer.ThrottledError
	if !errors.As(err, &throttled) || throttled.RetryAfter != time.Minute {
		t.Fatalf("error = %v, want ThrottledError with RetryAfter 1m", err)
	}
	if e.hasher.verifications() != before {
		t.Error("a throttled attempt still verified a password")
	}
	// The address's own limit (10) covers any email.
	for i := range 7 {
		_, _ = e.svc.Login(ctx, fmt.Sprintf("u%d@example.com", i), "x", "10.0.0.9")
	}
	if _, err := e.svc.Login(ctx, "zed@example.com", "x", "10.0.0.9"); !errors.As(err, &throttled) {
		t.Errorf("eleventh failure from one address = %v, want ThrottledError", err)
	}
	// After the window, the email may try again.
	e.now = e.now.Add(time.Minute)
	if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "10.0.0.9"); err != nil {
		t.Errorf("login after the window: %v", err)
	}
}

// TestThrottleNeverLocksOutACleanAddress: however many failures other addresses make for an
// email (attackers locking a user out), the right password from an address that has not failed
// logs in. Past the email's limit across addresses, an address that has failed is refused, and
// a clean one gets one guess, no more: guessing spread over many addresses stays bounded.
func TestThrottleNeverLocksOutACleanAddress(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "ada@example.com", false)
	var throttled *customer.ThrottledError
	for i := range 20 {
		addr := fmt.Sprintf("203.0.113.%d", i/2) // two failures from each address
		if _, err := e.svc.Login(ctx, "ada@example.com", "wrong-password", addr); !errors.Is(err, customer.ErrUnauthenticated) && !errors.As(err, &throttled) {
			t.Fatalf("attack %d: %v", i, err)
		}
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", "wrong-password", "203.0.113.1"); !errors.As(err, &throttled) {
		t.Errorf("a failed address past the email's limit = %v, want ThrottledError", err)
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "198.51.100.7"); err != nil {
		t.Errorf("right password from a clean address = %v, want a session", err)
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", "wrong-password", "198.51.100.8"); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("first guess from a fresh address = %v, want ErrUnauthenticated", err)
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "198.51.100.8"); !errors.As(err, &throttled) {
		t.Errorf("second try from an address that failed, past the email's limit = %v, want ThrottledError", err)
	}
}

// TestIPv6ClientsShareTheirNetwork: two clients in one IPv6 /64 share a bucket of every
// per-address limit, so that rotating addresses within a /64 gains nothing; another /64 is
// another client, whose right password the failures of the first never refuse. A configured
// /48 makes the whole /48 one client; IPv4-mapped addresses count as their IPv4 address.
func TestIPv6ClientsShareTheirNetwork(t *testing.T) {
	ctx := context.Background()
	var throttled *customer.ThrottledError
	t.Run("registrations", func(t *testing.T) {
		e := newEnv(t)
		for i := range 5 {
			addr := fmt.Sprintf("2001:db8:1:2::%x", i+1)
			if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: fmt.Sprintf("u%d@example.com", i), Password: "password1"}, addr); err != nil {
				t.Fatalf("registration %d from %s: %v", i, addr, err)
			}
		}
		if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "v@example.com", Password: "password1"}, "2001:db8:1:2:ffff::1"); !errors.As(err, &throttled) {
			t.Errorf("sixth registration from the same /64 = %v, want ThrottledError", err)
		}
		if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "w@example.com", Password: "password1"}, "2001:db8:1:3::1"); err != nil {
			t.Errorf("registration from the next /64: %v", err)
		}
	})
	t.Run("failed logins", func(t *testing.T) {
		e := newEnv(t)
		e.register(t, "ada@example.com", false)
		for i := range 3 {
			addr := fmt.Sprintf("2001:db8:1:2::%x", i+1)
			if _, err := e.svc.Login(ctx, "ada@example.com", "wrong-password", addr); !errors.Is(err, customer.ErrUnauthenticated) {
				t.Fatalf("failure %d from %s: %v", i, addr, err)
			}
		}
		if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "2001:db8:1:2::99"); !errors.As(err, &throttled) {
			t.Errorf("fourth attempt from the same /64 = %v, want ThrottledError", err)
		}
		if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "2001:db8:1:3::99"); err != nil {
			t.Errorf("right password from another /64 = %v, want a session", err)
		}
	})
	t.Run("a /48", func(t *testing.T) {
		limits := testLimits
		limits.IPv6Prefix = 48
		e := newEnvLimits(t, limits)
		for i := range 5 {
			addr := fmt.Sprintf("2001:db8:1:%x::1", i)
			if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: fmt.Sprintf("u%d@example.com", i), Password: "password1"}, addr); err != nil {
				t.Fatalf("registration %d from %s: %v", i, addr, err)
			}
		}
		if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "v@example.com", Password: "password1"}, "2001:db8:1:ffff::1"); !errors.As(err, &throttled) {
			t.Errorf("sixth registration from the same /48 = %v, want ThrottledError", err)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		limits := testLimits
		limits.InFlightPerAddr = 1
		e := newEnvLimits(t, limits)
		e.register(t, "ada@example.com", false)
		entered, release := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		e.hasher.afterVerify = func() {
			if first.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
		}
		done := make(chan error, 1)
		go func() {
			_, err := e.svc.Login(ctx, "ada@example.com", "password1", "2001:db8:1:2::1")
			done <- err
		}()
		<-entered
		if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "2001:db8:1:2::2"); !errors.As(err, &throttled) {
			t.Errorf("a second login from the same /64 while one is in flight = %v, want ThrottledError", err)
		}
		if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "2001:db8:1:3::1"); err != nil {
			t.Errorf("a login from the next /64 while one is in flight = %v, want a session", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Errorf("the login in flight: %v", err)
		}
	})
	t.Run("IPv4-mapped", func(t *testing.T) {
		e := newEnv(t)
		for i := range 5 {
			if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: fmt.Sprintf("u%d@example.com", i), Password: "password1"}, "::ffff:192.0.2.1"); err != nil {
				t.Fatalf("registration %d: %v", i, err)
			}
		}
		if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "v@example.com", Password: "password1"}, "192.0.2.1"); !errors.As(err, &throttled) {
			t.Errorf("sixth registration from the same IPv4 address = %v, want ThrottledError", err)
		}
		if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "w@example.com", Password: "password1"}, "::ffff:192.0.2.2"); err != nil {
			t.Errorf("registration from another IPv4 address: %v", err)
		}
	})
}

// TestRegisterChecksCheapThingsFirst: a taken email and an address over its registration limit
// are refused before any password is hashed; an admin's registrations are not limited.
func TestRegisterChecksCheapThingsFirst(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "ada@example.com", false) // 1 of the address's 5
	before := e.hasher.hashes()
	if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "ada@example.com", Password: "password1"}, "10.0.0.1"); !errors.Is(err, customer.ErrEmailTaken) {
		t.Errorf("taken email = %v, want ErrEmailTaken", err)
	}
	if n := e.hasher.hashes() - before; n != 0 {
		t.Errorf("a registration with a taken email hashed %d passwords, want 0", n)
	}
	for i := range 3 {
		if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: fmt.Sprintf("u%d@example.com", i), Password: "password1"}, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	before = e.hasher.hashes()
	var throttled *customer.ThrottledError
	if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "u9@example.com", Password: "password1"}, "10.0.0.1"); !errors.As(err, &throttled) || throttled.RetryAfter <= 0 {
		t.Errorf("sixth registration from one address = %v, want ThrottledError", err)
	}
	if n := e.hasher.hashes() - before; n != 0 {
		t.Errorf("a throttled registration hashed %d passwords, want 0", n)
	}
	if _, err := e.svc.Register(ctx, nil, customer.NewUser{Email: "u9@example.com", Password: "password1"}, "10.0.0.2"); err != nil {
		t.Errorf("registration from another address: %v", err)
	}
	if _, err := e.svc.Register(ctx, &customer.Caller{IsAdmin: true}, customer.NewUser{Email: "u10@example.com", Password: "password1"}, "10.0.0.1"); err != nil {
		t.Errorf("an admin's registration from a limited address: %v", err)
	}
}

// TestLoginRacingPasswordChangeLeavesNoSession: a password change that commits after a login
// verified the old password, but before the login created its session, leaves no session: the
// login fails and the old password opens nothing.
func TestLoginRacingPasswordChangeLeavesNoSession(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada := e.register(t, "ada@example.com", false)
	e.hasher.afterVerify = func() {
		e.hasher.afterVerify = nil
		if err := e.store.SetPassword(ctx, ada.ID, "hash:password2", e.now); err != nil {
			t.Error(err)
		}
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", "password1", "10.0.0.1"); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("login racing a password change = %v, want ErrUnauthenticated", err)
	}
	if n := e.store.sessionsOf(ada.ID); n != 0 {
		t.Errorf("%d sessions after the race, want 0", n)
	}
}

// TestCurrentPasswordChecksAreThrottled: a stolen token cannot guess the password through the
// current-password check of a password change: it counts like a failed login and is refused
// past the limit, even with the right password, from that address.
func TestCurrentPasswordChecksAreThrottled(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, c := e.signUp(t, "ada@example.com", false)
	c.Addr = "10.6.6.6"
	for range 3 {
		if err := e.svc.ChangePassword(ctx, c, "me", "guess", "password2"); !slicesEqual(validation.Fields(err), "current_password") {
			t.Fatalf("wrong guess = %v", err)
		}
	}
	before := e.hasher.verifications()
	var throttled *customer.ThrottledError
	if err := e.svc.ChangePassword(ctx, c, "me", "password1", "password2"); !errors.As(err, &throttled) {
		t.Errorf("fourth check = %v, want ThrottledError", err)
	}
	if e.hasher.verifications() != before {
		t.Error("a throttled check still verified a password")
	}
	if err := e.svc.DeleteUser(ctx, c, "me", "password1", etag.None); !errors.As(err, &throttled) {
		t.Errorf("deletion from the throttled address = %v, want ThrottledError", err)
	}
}

// TestOwnEmailAndDeletionNeedThePassword: changing one's own email or deleting one's own
// account needs the current password (an admin acting on another user does not); an email
// change revokes every other session of the user.
func TestOwnEmailAndDeletionNeedThePassword(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada, c := e.signUp(t, "ada@example.com", false)
	_, boss := e.signUp(t, "boss@example.com", true)
	other := e.login(t, "ada@example.com")
	email := "ada2@example.com"
	for _, current := range []string{"", "wrong-one"} {
		if _, err := e.svc.UpdateUser(ctx, c, "me", customer.Changes{Email: &email}, current, etag.None); !slicesEqual(validation.Fields(err), "current_password") {
			t.Errorf("email change with current password %q = %v, want a current_password violation", current, err)
		}
		if err := e.svc.DeleteUser(ctx, c, "me", current, etag.None); !slicesEqual(validation.Fields(err), "current_password") {
			t.Errorf("deletion with current password %q = %v, want a current_password violation", current, err)
		}
	}
	if _, err := e.svc.UpdateUser(ctx, c, "me", customer.Changes{Email: &email}, "password1", etag.None); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Authenticate(ctx, ada.ID+"|"+c.SessionID); err != nil {
		t.Errorf("the session that changed the email: %v, want it alive", err)
	}
	if _, _, err := e.svc.Authenticate(ctx, ada.ID+"|"+other.SessionID); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("another session after an email change: %v, want ErrUnauthenticated", err)
	}
	email3 := "ada3@example.com"
	if _, err := e.svc.UpdateUser(ctx, boss, ada.ID, customer.Changes{Email: &email3}, "", etag.None); err != nil {
		t.Errorf("admin changing another user's email: %v", err)
	}
	if _, _, err := e.svc.Authenticate(ctx, ada.ID+"|"+c.SessionID); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("the user's session after an admin changed their email: %v, want ErrUnauthenticated", err)
	}
	if err := e.svc.DeleteUser(ctx, boss, ada.ID, "", etag.None); err != nil {
		t.Errorf("admin deleting another user: %v", err)
	}
}

// TestSessionsPerUserAreCapped: a login beyond the cap revokes the oldest session.
func TestSessionsPerUserAreCapped(t *testing.T) {
	e := newEnv(t)
	ada := e.register(t, "ada@example.com", false)
	first := e.login(t, "ada@example.com")
	for range customer.DefaultMaxSessions {
		e.login(t, "ada@example.com")
	}
	if n := e.store.sessionsOf(ada.ID); n != customer.DefaultMaxSessions {
		t.Errorf("%d live sessions, want the cap %d", n, customer.DefaultMaxSessions)
	}
	if _, _, err := e.svc.Authenticate(context.Background(), ada.ID+"|"+first.SessionID); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("oldest session beyond the cap: %v, want ErrUnauthenticated", err)
	}
}

// TestSweepExpiredSessions: the sweep deletes expired sessions of every user, and only those.
func TestSweepExpiredSessions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada, bob := e.register(t, "ada@example.com", false), e.register(t, "bob@example.com", false)
	e.login(t, "ada@example.com")
	e.now = e.now.Add(10 * time.Minute)
	e.login(t, "bob@example.com")
	e.now = e.now.Add(6 * time.Minute) // ada's session expired, bob's not
	if err := e.svc.SweepExpiredSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := e.store.sessionsOf(ada.ID), e.store.sessionsOf(bob.ID); a != 0 || b != 1 {
		t.Errorf("after the sweep: %d and %d sessions, want 0 (expired) and 1", a, b)
	}
}

// TestLastAdmin: the last admin can be neither demoted nor deleted, by themselves or another.
func TestLastAdmin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	boss, b := e.signUp(t, "boss@example.com", true)
	other := e.register(t, "other@example.com", true)
	no := false
	if _, err := e.svc.UpdateUser(ctx, b, other.ID, customer.Changes{IsAdmin: &no}, "", etag.None); err != nil {
		t.Fatalf("demoting one of two admins: %v", err)
	}
	if _, err := e.svc.UpdateUser(ctx, b, "me", customer.Changes{IsAdmin: &no}, "", etag.None); !errors.Is(err, customer.ErrLastAdmin) {
		t.Errorf("demoting the last admin = %v, want ErrLastAdmin", err)
	}
	if err := e.svc.DeleteUser(ctx, b, boss.ID, "password1", etag.None); !errors.Is(err, customer.ErrLastAdmin) {
		t.Errorf("deleting the last admin = %v, want ErrLastAdmin", err)
	}
	if u, err := e.store.User(ctx, boss.ID); err != nil || !u.IsAdmin {
		t.Errorf("last admin after the attempts = %+v, %v; want unchanged", u, err)
	}
}

func TestAuthenticateAndRevocation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.register(t, "ada@example.com", false)
	res, err := e.svc.Login(ctx, "ada@example.com", "password1", "a")
	if err != nil {
		t.Fatal(err)
	}
	c, got, err := e.svc.Authenticate(ctx, res.Token)
	if err != nil || c.UserID != u.ID || got.Email != u.Email {
		t.Fatalf("Authenticate = %+v %+v %v", c, got, err)
	}
	// A token naming another user than its session's is refused.
	if _, _, err := e.svc.Authenticate(ctx, "someone-else|"+c.SessionID); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("mismatched subject error = %v, want ErrUnauthenticated", err)
	}
	// Expiry is checked against the session, with the service's clock.
	e.now = e.now.Add(15 * time.Minute)
	if _, _, err := e.svc.Authenticate(ctx, res.Token); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("expired session error = %v, want ErrUnauthenticated", err)
	}
	e.now = e.now.Add(-15 * time.Minute)
	if err := e.svc.Logout(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Authenticate(ctx, res.Token); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Errorf("logged-out token error = %v, want ErrUnauthenticated", err)
	}
}

// TestAuthenticateTokens: many tokens are answered as Authenticate answers each, in order,
// repeats included, with one store call for all their sessions.
func TestAuthenticateTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada := e.register(t, "ada@example.com", false)
	boss := e.register(t, "boss@example.com", true)
	login := func(email string) string {
		res, err := e.svc.Login(ctx, email, "password1", "a")
		if err != nil {
			t.Fatal(err)
		}
		return res.Token
	}
	adaTok, bossTok, outTok := login("ada@example.com"), login("boss@example.com"), login("ada@example.com")
	out, _, err := e.svc.Authenticate(ctx, outTok)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Logout(ctx, out); err != nil {
		t.Fatal(err)
	}
	_, adaSession, _ := strings.Cut(adaTok, "|")
	e.store.sessionUsersCalls = 0

	got, err := e.svc.AuthenticateTokens(ctx, []string{adaTok, "garbage", bossTok, outTok, boss.ID + "|" + adaSession, adaTok})
	if err != nil {
		t.Fatal(err)
	}
	validFor := func(tok string) customer.Authentication {
		c, u, err := e.svc.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return customer.Authentication{Valid: true, Caller: c, User: u}
	}
	want := []customer.Authentication{validFor(adaTok), {}, validFor(bossTok), {}, {}, validFor(adaTok)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AuthenticateTokens (-want +got):\n%s", diff)
	}
	if got[0].User.ID != ada.ID || !got[2].Caller.IsAdmin {
		t.Errorf("callers %+v, %+v; want ada and an admin", got[0].Caller, got[2].Caller)
	}
	if e.store.sessionUsersCalls != 1 {
		t.Errorf("%d SessionUsers calls for one AuthenticateTokens, want 1", e.store.sessionUsersCalls)
	}

	// Tokens none of which parses need no lookup.
	e.store.sessionUsersCalls = 0
	if got, err := e.svc.AuthenticateTokens(ctx, []string{"x", "y"}); err != nil || len(got) != 2 || got[0].Valid || got[1].Valid {
		t.Errorf("AuthenticateTokens(garbage) = %+v, %v; want two invalid results", got, err)
	}
	if e.store.sessionUsersCalls != 0 {
		t.Errorf("%d SessionUsers calls for tokens that do not parse, want 0", e.store.sessionUsersCalls)
	}
}

func TestAdminRightsComeFromTheStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	boss, caller := e.signUp(t, "boss@example.com", true)
	e.register(t, "other-boss@example.com", true)
	if !caller.IsAdmin {
		t.Fatal("admin not recognised")
	}
	no := false
	if _, err := e.svc.UpdateUser(ctx, caller, boss.ID, customer.Changes{IsAdmin: &no}, "", etag.None); err != nil {
		t.Fatal(err)
	}
	tok := boss.ID + "|" + caller.SessionID
	again, _, err := e.svc.Authenticate(ctx, tok)
	if err != nil || again.IsAdmin {
		t.Errorf("after demotion Authenticate = %+v, %v; want a non-admin", again, err)
	}
}

func TestAccessToAccounts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada, adaC := e.signUp(t, "ada@example.com", false)
	bob, bobC := e.signUp(t, "bob@example.com", false)
	_, bossC := e.signUp(t, "boss@example.com", true)
	name := "X"
	yes := true

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"self by me", func() error { _, err := e.svc.User(ctx, adaC, "me"); return err }, nil},
		{"self by id (upper case)", func() error { _, err := e.svc.User(ctx, adaC, toUpper(ada.ID)); return err }, nil},
		{"other user", func() error { _, err := e.svc.User(ctx, bobC, ada.ID); return err }, permission.ErrDenied},
		{"other unknown user", func() error { _, err := e.svc.User(ctx, bobC, "00000000-0000-7000-8000-999999999999"); return err }, permission.ErrDenied},
		{"admin reads anyone", func() error { _, err := e.svc.User(ctx, bossC, ada.ID); return err }, nil},
		{"admin reads unknown", func() error { _, err := e.svc.User(ctx, bossC, "00000000-0000-7000-8000-999999999999"); return err }, customer.ErrNotFound},
		{"update other", func() error {
			_, err := e.svc.UpdateUser(ctx, bobC, ada.ID, customer.Changes{FirstName: &name}, "", etag.None)
			return err
		}, permission.ErrDenied},
		{"self-promotion", func() error {
			_, err := e.svc.UpdateUser(ctx, adaC, "me", customer.Changes{IsAdmin: &yes}, "", etag.None)
			return err
		}, permission.ErrDenied},
		{"admin promotes", func() error {
			_, err := e.svc.UpdateUser(ctx, bossC, bob.ID, customer.Changes{IsAdmin: &yes}, "", etag.None)
			return err
		}, nil},
		{"delete other", func() error { return e.svc.DeleteUser(ctx, adaC, bob.ID, "", etag.None) }, permission.ErrDenied},
		{"password of other", func() error { return e.svc.ChangePassword(ctx, adaC, bob.ID, "password1", "password2") }, permission.ErrDenied},
		{"list as non-admin", func() error { _, _, err := e.svc.ListUsers(ctx, adaC, customer.ListQuery{}); return err }, permission.ErrDenied},
		{"list as admin", func() error { _, _, err := e.svc.ListUsers(ctx, bossC, customer.ListQuery{}); return err }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestUpdateUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada, c := e.signUp(t, "ada@example.com", false)
	e.register(t, "bob@example.com", false)

	e.now = e.now.Add(time.Hour)
	got, err := e.svc.UpdateUser(ctx, c, "me", customer.Changes{}, "", etag.None)
	if err != nil || got.UpdatedAt != ada.UpdatedAt {
		t.Errorf("empty PATCH = %+v, %v; want the user unchanged", got, err)
	}
	email := " ADA2@Example.com "
	got, err = e.svc.UpdateUser(ctx, c, "me", customer.Changes{Email: &email}, "password1", etag.None)
	if err != nil || got.Email != "ada2@example.com" || got.FirstName != ada.FirstName {
		t.Errorf("email change = %+v, %v", got, err)
	}
	taken := "bob@example.com"
	if _, err := e.svc.UpdateUser(ctx, c, "me", customer.Changes{Email: &taken}, "password1", etag.None); !errors.Is(err, customer.ErrEmailTaken) {
		t.Errorf("taken email error = %v", err)
	}
	bad, name := "ada@localhost", "Lovelace"
	_, err = e.svc.UpdateUser(ctx, c, "me", customer.Changes{Email: &bad, LastName: &name}, "", etag.None)
	if diff := cmp.Diff([]string{"email"}, validation.Fields(err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if u, _ := e.store.User(ctx, ada.ID); u.Email != "ada2@example.com" || u.LastName == name {
		t.Errorf("a rejected change was applied: %+v", u)
	}
}

func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ada, c := e.signUp(t, "ada@example.com", false)
	_, boss := e.signUp(t, "boss@example.com", true)

	if err := e.svc.ChangePassword(ctx, c, "me", "", "password2"); !slicesEqual(validation.Fields(err), "current_password") {
		t.Errorf("missing current password error = %v", err)
	}
	if err := e.svc.ChangePassword(ctx, c, "me", "wrong-one", "password2"); !slicesEqual(validation.Fields(err), "current_password") {
		t.Errorf("wrong current password error = %v", err)
	}
	if err := e.svc.ChangePassword(ctx, c, "me", "password1", "password2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Authenticate(ctx, ada.ID+"|"+c.SessionID); !errors.Is(err, customer.ErrUnauthenticated) {
		t.Error("token survived a password change")
	}
	// An admin resets without the current password.
	if err := e.svc.ChangePassword(ctx, boss, ada.ID, "", "password3"); err != nil {
		t.Errorf("admin reset: %v", err)
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", "password3", "z"); err != nil {
		t.Errorf("login with the reset password: %v", err)
	}
	// An admin changing their own password is self-service.
	if err := e.svc.ChangePassword(ctx, boss, "me", "", "password4"); !slicesEqual(validation.Fields(err), "current_password") {
		t.Errorf("admin's own change without current password error = %v", err)
	}
}

func slicesEqual(got []string, want ...string) bool { return cmp.Equal(got, want) }

func TestListUsersPaging(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, boss := e.signUp(t, "boss@example.com", true)
	for i := range 4 {
		e.register(t, fmt.Sprintf("u%d@example.com", i), false)
	}
	var emails []string
	var after *customer.Cursor
	for page := 0; ; page++ {
		users, next, err := e.svc.ListUsers(ctx, boss, customer.ListQuery{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			emails = append(emails, u.Email)
		}
		if next == nil {
			break
		}
		after = next
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	want := []string{"boss@example.com", "u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com"}
	if diff := cmp.Diff(want, emails); diff != "" {
		t.Errorf("emails (-want +got):\n%s", diff)
	}
	users, next, err := e.svc.ListUsers(ctx, boss, customer.ListQuery{Limit: 5})
	if err != nil || len(users) != 5 || next != nil {
		t.Errorf("exact last page: %d users, next %v, %v; want 5 and no next page", len(users), next, err)
	}
	users, _, _ = e.svc.ListUsers(ctx, boss, customer.ListQuery{Limit: 1000})
	if len(users) != 5 {
		t.Errorf("clamped page has %d users", len(users))
	}
}
