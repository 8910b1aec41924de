package customer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// etag.ErrMismatch; the check and the change are one atomic step. When c changes the email,
	// it deletes every session of the user but keepSession in the same transaction. Demoting
	// the last admin is ErrLastAdmin, checked and written atomically.
	UpdateUser(ctx context.Context, id string, c Changes, cond etag.Condition, now time.Time, keepSession string) (User, error)
	// DeleteUser deletes the user and their sessions, or returns ErrNotFound, or ErrLastAdmin
	// for the last admin, or, if the user's ETag does not satisfy cond, etag.ErrMismatch (each
	// checked and written atomically).
	DeleteUser(ctx context.Context, id string, cond etag.Condition) error
	// ExistingUsers returns those of ids that are the IDs of existing users, each once.
	ExistingUsers(ctx context.Context, ids []string) ([]string, error)
	// SetPassword stores a new password hash and deletes every session of the user, in one
	// transaction, or returns ErrNotFound.
	SetPassword(ctx context.Context, id, hash string, now time.Time) error
	// CreateSession stores a session, atomically on the condition that the user's password
	// hash is still passwordHash (else ErrUnauthenticated: the password that was verified is no
	// longer theirs), and revokes the user's oldest sessions beyond the newest maxSessions.
	CreateSession(ctx context.Context, s Session, passwordHash string, maxSessions int) error
	// DeleteSession deletes a session; deleting one that is gone is not an error.
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions deletes every session that expired before now, unless another
	// replica is sweeping at that moment (then it returns at once), so replicas may all sweep.
	DeleteExpiredSessions(ctx context.Context, now time.Time) error
	// SessionUser returns the user of the session if it exists and has not expired at now, or
	// ErrNotFound. It is the query behind the validation of one token.
	SessionUser(ctx context.Context, sessionID string, now time.Time) (User, error)
	// SessionUsers returns, by session ID, the users of those of the sessions that exist and
	// have not expired at now; the others are missing from the map. It is the one query behind
	// the validation of many tokens together.
	SessionUsers(ctx context.Context, sessionIDs []string, now time.Time) (map[string]User, error)
}

// Hasher hashes and checks passwords. Both wait for a bounded hashing queue: they return the
// context's error when ctx ends first, and an error of their own at once when the queue is
// full (the transport maps it).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches hash, in time independent of where they differ.
	Verify(ctx context.Context, password, hash string) (bool, error)
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
	// MaxSessions is how many live sessions a user may have; a login beyond it revokes the
	// oldest. DefaultMaxSessions when 0.
	MaxSessions int
	// PasswordChecked, when set, is told how every current-password check of an account
	// change ended (checkCurrentPassword): nil when the password matched, else what the
	// change was refused with. The service's metrics count them.
	PasswordChecked func(ctx context.Context, err error)
}

// DefaultMaxSessions is Options.MaxSessions when unset.
const DefaultMaxSessions = 10

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
	maxSess   int
	checked   func(ctx context.Context, err error)
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
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.PasswordChecked == nil {
		opts.PasswordChecked = func(context.Context, error) {}
	}
	dummy, err := hasher.Hash(context.Background(), "dummy password for unknown users")
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	return &Service{
		store: store, hasher: hasher, tokens: tokens, throttle: throttle,
		ttl: opts.TokenTTL, newID: opts.NewID,
		// Microseconds are what PostgreSQL keeps: an answer shows the same time a later read will.
		now:       func() time.Time { return opts.Now().UTC().Truncate(time.Microsecond) },
		dummyHash: dummy, maxSess: opts.MaxSessions, checked: opts.PasswordChecked,
	}, nil
}

// NewUser holds the fields of a registration.
type NewUser struct {
	Email, Password, FirstName, LastName string
	IsAdmin                              bool
}

// Register creates an account. caller is nil for an anonymous registration; only an admin
// caller may create an admin. Registrations from one client address (addr) are limited, except
// an admin's. The cheap checks (the email's form, the address's limit, whether the email is
// taken) come before the password is hashed, which is the expensive part.
func (s *Service) Register(ctx context.Context, caller *Caller, in NewUser, addr string) (User, error) {
	admin := caller != nil && caller.IsAdmin
	if in.IsAdmin && !admin {
		return User{}, permission.ErrDenied
	}
	email := NormalizeEmail(in.Email)
	if err := checkEmail(email); err != nil {
		return User{}, err
	}
	if !admin {
		done, err := s.throttle.enter(addr)
		if err != nil {
			return User{}, err
		}
		defer done()
		if err := s.throttle.BeginRegistration(ctx, s.now(), addr); err != nil {
			return User{}, err
		}
	}
	switch _, err := s.store.UserByEmail(ctx, email); {
	case err == nil:
		return User{}, ErrEmailTaken
	case !errors.Is(err, ErrNotFound):
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
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
// work. Failures are throttled (see Throttle); a throttled attempt is refused with a
// ThrottledError before any password is checked. The session is created only if the password
// that was verified is still the user's, so a password change that commits during the check
// leaves no session behind.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (LoginResult, error) {
	email = NormalizeEmail(email)
	now := s.now()
	done, err := s.throttle.enter(clientAddr)
	if err != nil {
		return LoginResult{}, err
	}
	defer done()
	attempt, err := s.throttle.Begin(ctx, now, email, clientAddr)
	if err != nil {
		return LoginResult{}, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
		if _, err := s.hasher.Verify(ctx, password, s.dummyHash); err != nil {
			return LoginResult{}, errors.Join(fmt.Errorf("verify password: %w", err), attempt.Cancel(context.WithoutCancel(ctx)))
		}
		return LoginResult{}, ErrUnauthenticated
	case err != nil:
		return LoginResult{}, errors.Join(err, attempt.Cancel(context.WithoutCancel(ctx)))
	}
	ok, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return LoginResult{}, errors.Join(fmt.Errorf("verify password: %w", err), attempt.Cancel(context.WithoutCancel(ctx)))
	}
	if !ok {
		return LoginResult{}, ErrUnauthenticated
	}
	if err := attempt.Succeed(ctx); err != nil {
		return LoginResult{}, err
	}

	// Whole seconds, like the token's exp claim, so that both expire at the same instant.
	sess := Session{ID: s.newID(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.ttl).Truncate(time.Second)}
	if err := s.store.CreateSession(ctx, sess, u.PasswordHash, s.maxSess); err != nil {
		return LoginResult{}, err
	}
	token, err := s.tokens.Issue(Claims{UserID: u.ID, SessionID: sess.ID}, now, sess.ExpiresAt)
	if err != nil {
		return LoginResult{}, fmt.Errorf("issue token: %w", err)
	}
	return LoginResult{Token: token, ExpiresAt: sess.ExpiresAt, User: u}, nil
}

// confirmSelf asks callers acting on their own account (id is theirs) for their current
// password (checkCurrentPassword); admins acting on someone else's are not asked.
func (s *Service) confirmSelf(ctx context.Context, caller Caller, id, current, why string) error {
	if id != caller.UserID {
		return nil
	}
	u, err := s.store.User(ctx, id)
	if err != nil {
		return err
	}
	return s.checkCurrentPassword(ctx, caller, u, current, why)
}

// checkCurrentPassword checks the password users give to change their own account, throttled
// like a login (a stolen token must not become a password-guessing oracle). why completes "is
// required to ...".
func (s *Service) checkCurrentPassword(ctx context.Context, caller Caller, u User, current, why string) (err error) {
	if current == "" {
		return validation.Fail("current_password", "is required to "+why)
	}
	defer func() { s.checked(ctx, err) }()
	attempt, err := s.throttle.Begin(ctx, s.now(), u.Email, caller.Addr)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if err != nil {
		return errors.Join(fmt.Errorf("verify password: %w", err), attempt.Cancel(context.WithoutCancel(ctx)))
	}
	if !ok {
		return validation.Fail("current_password", "does not match")
	}
	return attempt.Succeed(ctx)
}

// SweepExpiredSessions deletes every expired session.
func (s *Service) SweepExpiredSessions(ctx context.Context) error {
	return s.store.DeleteExpiredSessions(ctx, s.now())
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

// Authentication is AuthenticateTokens' answer for one token: whether it is valid and, if it
// is, the caller it stands for and their current account.
type Authentication struct {
	Valid  bool
	Caller Caller
	User   User
}

// AuthenticateTokens checks tokens as Authenticate checks one, and answers one Authentication
// per token, in order; a token may appear more than once. The sessions of all the tokens are
// looked up together, with one store call. It fails as a whole only when that lookup fails:
// answering a token "invalid" then would log its user out for a failure of this service.
func (s *Service) AuthenticateTokens(ctx context.Context, tokens []string) ([]Authentication, error) {
	claims := make([]Claims, len(tokens))
	parsed := make([]bool, len(tokens))
	sessions := make([]string, 0, len(tokens))
	for i, tok := range tokens {
		c, err := s.tokens.Parse(tok)
		if err != nil {
			continue
		}
		claims[i], parsed[i] = c, true
		if !slices.Contains(sessions, c.SessionID) {
			sessions = append(sessions, c.SessionID)
		}
	}
	out := make([]Authentication, len(tokens))
	if len(sessions) == 0 {
		return out, nil
	}
	users, err := s.store.SessionUsers(ctx, sessions, s.now())
	if err != nil {
		return nil, err
	}
	for i, c := range claims {
		u, ok := users[c.SessionID]
		if !parsed[i] || !ok || u.ID != c.UserID {
			continue
		}
		out[i] = Authentication{Valid: true, Caller: Caller{UserID: u.ID, IsAdmin: u.IsAdmin, SessionID: c.SessionID}, User: u}
	}
	return out, nil
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
// etag.ErrMismatch). Only an admin may change IsAdmin, and the last admin cannot be demoted.
// Users changing their own email must give their current password; an email change revokes
// every other session of the user.
func (s *Service) UpdateUser(ctx context.Context, caller Caller, id string, c Changes, current string, cond etag.Condition) (User, error) {
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
		if err := s.confirmSelf(ctx, caller, id, current, "change your own email"); err != nil {
			return User{}, err
		}
	}
	return s.store.UpdateUser(ctx, id, c, cond, s.now(), caller.SessionID)
}

// DeleteUser deletes an account if its ETag satisfies cond (else etag.ErrMismatch); every token
// issued to it stops working. Users deleting their own account must give their current
// password; the last admin cannot be deleted.
func (s *Service) DeleteUser(ctx context.Context, caller Caller, id, current string, cond etag.Condition) error {
	id, err := permission.SelfOrAdmin(caller.UserID, caller.IsAdmin, id)
	if err != nil {
		return err
	}
	if err := s.confirmSelf(ctx, caller, id, current, "delete your own account"); err != nil {
		return err
	}
	return s.store.DeleteUser(ctx, id, cond)
}

// ExistingUsers returns those of ids that belong to existing users: other services erase what
// they hold of the others. Only other services call it (an internal RPC); no user's rights
// are checked.
func (s *Service) ExistingUsers(ctx context.Context, ids []string) ([]string, error) {
	lower := make([]string, len(ids))
	for i, id := range ids {
		lower[i] = strings.ToLower(id)
	}
	return s.store.ExistingUsers(ctx, lower)
}

// ChangePassword sets a new password and revokes every token of the user. Users changing
// their own password (admins included) must give the current one, checked like a login; an
// admin resetting someone else's does not.
func (s *Service) ChangePassword(ctx context.Context, caller Caller, id, current, next string) error {
	id, err := permission.SelfOrAdmin(caller.UserID, caller.IsAdmin, id)
	if err != nil {
		return err
	}
	if err := s.confirmSelf(ctx, caller, id, current, "change your own password"); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.store.SetPassword(ctx, id, hash, s.now())
}
