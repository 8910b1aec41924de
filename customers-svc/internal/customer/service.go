package customer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/page"
	"github.com/acme/shop/foundation/permission"
	"github.com/acme/shop/foundation/validation"
)

// Session is the server-side state of one access token: the token validates only while its
// session exists and has not expired.
type Session struct {
	ID        string // the token's jti
	UserID    string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Changes lists the fields of a user to change; nil means "leave as it is".
type Changes struct {
	Email     *string
	FirstName *string
	LastName  *string
	IsAdmin   *bool
}

func (c Changes) empty() bool {
	return c.Email == nil && c.FirstName == nil && c.LastName == nil && c.IsAdmin == nil
}

// Cursor is a position in the list of users, which is ordered by ID (UUIDv7s, so by creation
// time).
type Cursor struct {
	ID string
}

// ListQuery selects a page of users.
type ListQuery struct {
	// Search is matched case-insensitively, as a literal substring, against email and names.
	Search string
	// After is the last user of the previous page; nil for the first page.
	After *Cursor
	// Limit is the page size asked for: 0 for page.DefaultSize, clamped to page.MaxSize.
	// The Service asks its Store for one more, to learn whether another page follows.
	Limit int
}

// Store keeps users and sessions. The customer package declares it; customerdb implements it.
type Store interface {
	// CreateUser inserts u, or returns ErrEmailTaken.
	CreateUser(ctx context.Context, u User) error
	// User returns the user with the ID, or ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// UserByEmail returns the user with the normalised email, or ErrNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers returns up to q.Limit users after q.After in ID order.
	ListUsers(ctx context.Context, q ListQuery) ([]User, error)
	// UpdateUser applies the non-nil changes and returns the user, or ErrNotFound or
	// ErrEmailTaken. If the user's ETag does not satisfy cond, it changes nothing and returns
	// etag.ErrMismatch; the check and the change are one atomic step.
	UpdateUser(ctx context.Context, id string, c Changes, cond etag.Condition, now time.Time) (User, error)
	// DeleteUser deletes the user and their sessions, or returns ErrNotFound, or, if the
	// user's ETag does not satisfy cond, etag.ErrMismatch (atomically, as UpdateUser).
	DeleteUser(ctx context.Context, id string, cond etag.Condition) error
	// SetPassword stores a new password hash and deletes every session of the user, in one
	// transaction, or returns ErrNotFound.
	SetPassword(ctx context.Context, id, hash string, now time.Time) error
	// CreateSession stores a session.
	CreateSession(ctx context.Context, s Session) error
	// DeleteSession deletes a session; deleting one that is gone is not an error.
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions deletes the user's sessions that expired before now.
	DeleteExpiredSessions(ctx context.Context, userID string, now time.Time) error
	// SessionUser returns the user of the session if it exists and has not expired at now, or
	// ErrNotFound. It is the one query behind every token validation.
	SessionUser(ctx context.Context, sessionID string, now time.Time) (User, error)
}

// Hasher hashes and checks passwords.
type Hasher interface {
	Hash(password string) (string, error)
	// Verify reports whether password matches hash, in time independent of where they differ.
	Verify(password, hash string) (bool, error)
}

// Claims are what a valid token says.
type Claims struct {
	UserID    string
	SessionID string
}

// Tokens issues and checks signed access tokens.
type Tokens interface {
	Issue(c Claims, issuedAt, expiresAt time.Time) (string, error)
	// Parse checks the token's signature, algorithm and expiry and returns its claims.
	Parse(token string) (Claims, error)
}

// Options tunes a Service.
type Options struct {
	// TokenTTL is how long an access token lives.
	TokenTTL time.Duration
	// Now returns the current time; time.Now by default.
	Now func() time.Time
	// NewID returns a new unique ID (a UUID) for users and sessions.
	NewID func() string
}

// Service carries out the customers use cases and enforces who may do what.
type Service struct {
	store     Store
	hasher    Hasher
	tokens    Tokens
	throttle  *Throttle
	ttl       time.Duration
	now       func() time.Time
	newID     func() string
	dummyHash string
}

// NewService returns a Service. It hashes one dummy password up front: logins for unknown
// emails verify against it, so that they cost as much as logins with a wrong password.
func NewService(store Store, hasher Hasher, tokens Tokens, throttle *Throttle, opts Options) (*Service, error) {
	if opts.TokenTTL <= 0 || opts.NewID == nil {
		return nil, errors.New("customer: TokenTTL and NewID are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dummy, err := hasher.Hash("dummy password for unknown users")
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	return &Service{
		store: store, hasher: hasher, tokens: tokens, throttle: throttle,
		ttl: opts.TokenTTL, newID: opts.NewID,
		// Microseconds are what PostgreSQL keeps: an answer shows the same time a later read will.
		now:       func() time.Time { return opts.Now().UTC().Truncate(time.Microsecond) },
		dummyHash: dummy,
	}, nil
}

// NewUser holds the fields of a registration.
type NewUser struct {
	Email, Password, FirstName, LastName string
	IsAdmin                              bool
}

// Register creates an account. caller is nil for an anonymous registration; only an admin
// caller may create an admin.
func (s *Service) Register(ctx context.Context, caller *Caller, in NewUser) (User, error) {
	if in.IsAdmin && (caller == nil || !caller.IsAdmin) {
		return User{}, permission.ErrDenied
	}
	email := NormalizeEmail(in.Email)
	if err := checkEmail(email); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(in.Password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now()
	u := User{
		ID: s.newID(), Email: email, PasswordHash: hash,
		FirstName: in.FirstName, LastName: in.LastName, IsAdmin: in.IsAdmin,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// LoginResult is a new access token and its user.
type LoginResult struct {
	Token     string
	ExpiresAt time.Time
	User      User
}

// Login checks an email and password and issues a token backed by a new session. Unknown
// emails and wrong passwords both return ErrUnauthenticated after the same amount of hashing
// work. Failures are counted per email and per client address; past the limit, attempts are
// refused with a ThrottledError before any password is checked.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (LoginResult, error) {
	email = NormalizeEmail(email)
	now := s.now()
	attempt, err := s.throttle.Begin(ctx, now, email, clientAddr)
	if err != nil {
		return LoginResult{}, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
		_, _ = s.hasher.Verify(password, s.dummyHash)
		return LoginResult{}, ErrUnauthenticated
	case err != nil:
		return LoginResult{}, errors.Join(err, attempt.Cancel(ctx))
	}
	ok, err := s.hasher.Verify(password, u.PasswordHash)
	if err != nil {
		return LoginResult{}, errors.Join(fmt.Errorf("verify password: %w", err), attempt.Cancel(ctx))
	}
	if !ok {
		return LoginResult{}, ErrUnauthenticated
	}
	if err := attempt.Succeed(ctx); err != nil {
		return LoginResult{}, err
	}

	// Sessions of this user that have expired are useless; drop them while we are here.
	if err := s.store.DeleteExpiredSessions(ctx, u.ID, now); err != nil {
		return LoginResult{}, err
	}
	// Whole seconds, like the token's exp claim, so that both expire at the same instant.
	sess := Session{ID: s.newID(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.ttl).Truncate(time.Second)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return LoginResult{}, err
	}
	token, err := s.tokens.Issue(Claims{UserID: u.ID, SessionID: sess.ID}, now, sess.ExpiresAt)
	if err != nil {
		return LoginResult{}, fmt.Errorf("issue token: %w", err)
	}
	return LoginResult{Token: token, ExpiresAt: sess.ExpiresAt, User: u}, nil
}

// Authenticate checks a token and returns the caller it stands for and their current account.
// Any token that is not valid right now (bad signature or algorithm, expired, logged out,
// issued before a password change, user deleted) is ErrUnauthenticated. Admin rights come
// from the database, never from the token.
func (s *Service) Authenticate(ctx context.Context, token string) (Caller, User, error) {
	claims, err := s.tokens.Parse(token)
	if err != nil {
		return Caller{}, User{}, ErrUnauthenticated
	}
	u, err := s.store.SessionUser(ctx, claims.SessionID, s.now())
	if errors.Is(err, ErrNotFound) || (err == nil && u.ID != claims.UserID) {
		return Caller{}, User{}, ErrUnauthenticated
	}
	if err != nil {
		return Caller{}, User{}, err
	}
	return Caller{UserID: u.ID, IsAdmin: u.IsAdmin, SessionID: claims.SessionID}, u, nil
}

// Logout revokes the caller's token.
func (s *Service) Logout(ctx context.Context, caller Caller) error {
	return s.store.DeleteSession(ctx, caller.SessionID)
}

// User returns an account the caller may read.
func (s *Service) User(ctx context.Context, caller Caller, id string) (User, error) {
	id, err := permission.SelfOrAdmin(caller.UserID, caller.IsAdmin, id)
	if err != nil {
		return User{}, err
	}
	return s.store.User(ctx, id)
}

// ListUsers returns a page of users and the cursor of the next page (nil on the last one).
// Admins only.
func (s *Service) ListUsers(ctx context.Context, caller Caller, q ListQuery) ([]User, *Cursor, error) {
	if !caller.IsAdmin {
		return nil, nil, permission.ErrDenied
	}
	users, next, err := page.Fetch(q.Limit, func(limit int) ([]User, error) {
		q.Limit = limit
		return s.store.ListUsers(ctx, q)
	}, func(u User) string { return u.ID })
	if err != nil || next == "" {
		return users, nil, err
	}
	return users, &Cursor{ID: next}, nil
}

// UpdateUser changes the fields present in c if the user's ETag satisfies cond (else
// etag.ErrMismatch). Only an admin may change IsAdmin.
func (s *Service) UpdateUser(ctx context.Context, caller Caller, id string, c Changes, cond etag.Condition) (User, error) {
	id, err := permission.SelfOrAdmin(caller.UserID, caller.IsAdmin, id)
	if err != nil {
		return User{}, err
	}
	if c.IsAdmin != nil && !caller.IsAdmin {
		return User{}, permission.ErrDenied
	}
	if c.empty() {
		u, err := s.store.User(ctx, id)
		if err != nil {
			return User{}, err
		}
		if err := cond.Check(u.ETag()); err != nil {
			return User{}, err
		}
		return u, nil
	}
	if c.Email != nil {
		email := NormalizeEmail(*c.Email)
		if err := checkEmail(email); err != nil {
			return User{}, err
		}
		c.Email = &email
	}
	return s.store.UpdateUser(ctx, id, c, cond, s.now())
}

// DeleteUser deletes an account if its ETag satisfies cond (else etag.ErrMismatch); every token
// issued to it stops working.
func (s *Service) DeleteUser(ctx context.Context, caller Caller, id string, cond etag.Condition) error {
	id, err := permission.SelfOrAdmin(caller.UserID, caller.IsAdmin, id)
	if err != nil {
		return err
	}
	return s.store.DeleteUser(ctx, id, cond)
}

// ChangePassword sets a new password and revokes every token of the user. Users changing
// their own password (admins included) must give the current one; an admin resetting someone
// else's does not.
func (s *Service) ChangePassword(ctx context.Context, caller Caller, id, current, next string) error {
	id, err := permission.SelfOrAdmin(caller.UserID, caller.IsAdmin, id)
	if err != nil {
		return err
	}
	if id == caller.UserID {
		if current == "" {
			return validation.Fail("current_password", "is required to change your own password")
		}
		u, err := s.store.User(ctx, id)
		if err != nil {
			return err
		}
		ok, err := s.hasher.Verify(current, u.PasswordHash)
		if err != nil {
			return fmt.Errorf("verify password: %w", err)
		}
		if !ok {
			return validation.Fail("current_password", "does not match")
		}
	}
	hash, err := s.hasher.Hash(next)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.store.SetPassword(ctx, id, hash, s.now())
}
