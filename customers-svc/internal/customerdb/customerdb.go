// Package customerdb implements customer.Store with gorm, on PostgreSQL or SQLite. It is the
// only package that knows the table layout; rows never leave it.
//
// The row types are the one description of the tables here (the migrations keep their own
// frozen copies), and every statement goes through gorm. gorm writes them from the row types,
// except the session lookup behind every token validation, written in SQL beside the row types
// with gorm's ? placeholders: a database.Query, bound by gorm once, then run on gorm's
// connection pool with no gorm statement built per call, its rows scanned by hand. The
// statements whose condition and write must be one (a throttle count, a session insert that
// needs the verified password hash, the last-admin check) are SQL constants too, run by gorm.
package customerdb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/batch"
	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/etag"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// userRow is a row of the users table.
type userRow struct {
	ID           string `gorm:"primaryKey"`
	Email        string
	PasswordHash string
	FirstName    string
	LastName     string
	IsAdmin      bool
	database.Timestamps
}

func (userRow) TableName() string { return "users" }

// sessionRow is a row of the sessions table.
type sessionRow struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	ExpiresAt time.Time
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
}

func (sessionRow) TableName() string { return "sessions" }

// sessionUser is a session's user and expiry, as the token lookup reads them.
type sessionUser struct {
	user      customer.User
	expiresAt time.Time
}

// sessionUsersColumns looks sessions up by primary key with their users: the query behind
// every token validation, for one session (sessionUserSQL) or a batch of them
// (sessionUsersSQL, PostgreSQL, the IDs as one array). The password hash is not read: no
// caller of a token needs it.
const (
	sessionUsersColumns = `SELECT s.id, s.expires_at, u.id, u.email, u.first_name, u.last_name, u.is_admin, u.created_at, u.updated_at
FROM sessions s JOIN users u ON u.id = s.user_id`
	sessionUserSQL  = sessionUsersColumns + ` WHERE s.id = ?`
	sessionUsersSQL = sessionUsersColumns + ` WHERE s.id = ANY(?)`
)

// scanSessionUsers reads the rows of sessionUsersColumns, by session ID.
func scanSessionUsers(rows *sql.Rows, sessions int) (map[string]sessionUser, error) {
	defer func() { _ = rows.Close() }()
	out := make(map[string]sessionUser, sessions)
	for rows.Next() {
		var (
			id string
			su sessionUser
			u  = &su.user
		)
		if err := rows.Scan(&id, &su.expiresAt, &u.ID, &u.Email, &u.FirstName, &u.LastName, &u.IsAdmin, &u.CreatedAt, &u.UpdatedAt); err != nil {
			return nil, err
		}
		u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		out[id] = su
	}
	return out, rows.Err()
}

// Store is the gorm implementation of customer.Store.
type Store struct {
	db *gorm.DB
	// sessions batches the hot lookup behind the validation of one token; manySessions reads
	// the sessions of many tokens at once.
	sessions     *batch.Loader[string, sessionUser]
	manySessions batch.Fetch[string, sessionUser]
	// observe is told the number of sessions of each SessionUsers query, if set.
	observe func(keys int)
	// deleted writes, in the transaction that deletes a user, what else must commit with the
	// deletion (the UserDeleted event in the outbox; DeleteWith).
	deleted func(ctx context.Context, tx *gorm.DB, userID string) error
	// sessionQuery and sessionsQuery are sessionUserSQL and sessionUsersSQL.
	sessionQuery, sessionsQuery database.Query
}

// New returns a Store on db, which must have been migrated.
func New(db *gorm.DB) (*Store, error) {
	s := &Store{db: db, sessionQuery: database.NewQuery(db, sessionUserSQL), sessionsQuery: database.NewQuery(db, sessionUsersSQL)}
	s.sessions = database.Lookups(db, s.lookupSession, s.sessionUsersAtOnce, sessionBatchSize)
	s.manySessions = database.Many(db, s.lookupSession, s.sessionUsersAtOnce)
	return s, nil
}

// DeleteWith has every deletion of a user also run write, in the deletion's transaction, so
// that both commit or neither does: write adds the UserDeleted event to the outbox. Call it
// before the store is used.
func (s *Store) DeleteWith(write func(ctx context.Context, tx *gorm.DB, userID string) error) {
	s.deleted = write
}

// ObserveBatches has f called with the number of sessions of every query that reads many
// (a metric of the batch sizes): batched single lookups and SessionUsers alike. Call it before
// the store is used.
func (s *Store) ObserveBatches(f func(keys int)) {
	s.sessions.Observe(f)
	s.observe = f
}

func toRow(u customer.User) userRow {
	return userRow{
		ID: u.ID, Email: u.Email, PasswordHash: u.PasswordHash, FirstName: u.FirstName,
		LastName: u.LastName, IsAdmin: u.IsAdmin,
		Timestamps: database.Timestamps{CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt},
	}
}

func toUser(r userRow) customer.User {
	return customer.User{
		ID: r.ID, Email: r.Email, PasswordHash: r.PasswordHash, FirstName: r.FirstName,
		LastName: r.LastName, IsAdmin: r.IsAdmin, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateUser implements customer.Store.
func (s *Store) CreateUser(ctx context.Context, u customer.User) error {
	row := toRow(u)
	err := s.db.WithContext(ctx).Create(&row).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return customer.ErrEmailTaken
	}
	return err
}

// User implements customer.Store.
func (s *Store) User(ctx context.Context, id string) (customer.User, error) {
	return s.first(s.db.WithContext(ctx).Where("id = ?", id))
}

// UserByEmail implements customer.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (customer.User, error) {
	return s.first(s.db.WithContext(ctx).Where("email = ?", email))
}

func (s *Store) first(q *gorm.DB) (customer.User, error) {
	return database.Take(q, customer.ErrNotFound, toUser)
}

// ListUsers implements customer.Store. Search is a literal, case-insensitive substring: LIKE's
// wildcards in it are escaped.
func (s *Store) ListUsers(ctx context.Context, q customer.ListQuery) ([]customer.User, error) {
	tx := s.db.WithContext(ctx).Order("id").Limit(q.Limit)
	if q.After != nil {
		tx = tx.Where("id > ?", q.After.ID)
	}
	if q.Search != "" {
		pattern := database.ContainsPattern(q.Search)
		tx = tx.Where(`(LOWER(email) LIKE ? ESCAPE '\' OR LOWER(first_name) LIKE ? ESCAPE '\' OR LOWER(last_name) LIKE ? ESCAPE '\')`, pattern, pattern, pattern)
	}
	var rows []userRow
	if err := tx.Find(&rows).Error; err != nil {
		return nil, err
	}
	users := make([]customer.User, len(rows))
	for i, r := range rows {
		users[i] = toUser(r)
	}
	return users, nil
}

// lockAdmins locks the admins' rows until tx ends (PostgreSQL), so that two transactions that
// each demote or delete one of the last two admins run one after the other, and the second sees
// the first's change. SQLite runs one writing statement at a time, and each check below is one
// statement with its write.
func lockAdmins(tx *gorm.DB) error {
	if database.Dialect(tx) != "postgres" {
		return nil
	}
	var ids []string
	return tx.Raw("SELECT id FROM users WHERE is_admin ORDER BY id FOR UPDATE").Scan(&ids).Error
}

// anotherAdmin is the condition, on the users row being changed, that keeps the last admin.
const anotherAdmin = "(NOT is_admin OR EXISTS (SELECT 1 FROM users other WHERE other.is_admin AND other.id <> users.id))"

// UpdateUser implements customer.Store.
func (s *Store) UpdateUser(ctx context.Context, id string, c customer.Changes, cond etag.Condition, now time.Time, keepSession string) (customer.User, error) {
	changes := map[string]any{"updated_at": now}
	if c.Email != nil {
		changes["email"] = *c.Email
	}
	if c.FirstName != nil {
		changes["first_name"] = *c.FirstName
	}
	if c.LastName != nil {
		changes["last_name"] = *c.LastName
	}
	demote := c.IsAdmin != nil && !*c.IsAdmin
	if c.IsAdmin != nil {
		changes["is_admin"] = *c.IsAdmin
	}
	var u customer.User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Admins first, then the user: the order every writer takes, so that none waits in a
		// cycle.
		q := tx.Model(&userRow{}).Where("id = ?", id)
		if demote {
			if err := lockAdmins(tx); err != nil {
				return err
			}
			q = q.Where(anotherAdmin)
		}
		if err := s.checkUser(tx, id, cond); err != nil {
			return err
		}
		res := q.Updates(changes)
		if errors.Is(res.Error, gorm.ErrDuplicatedKey) {
			return customer.ErrEmailTaken
		}
		if res.Error != nil {
			return res.Error
		}
		var err error
		u, err = s.first(tx.Where("id = ?", id))
		if err != nil {
			return err
		}
		if res.RowsAffected == 0 && demote {
			return customer.ErrLastAdmin
		}
		if c.Email != nil {
			return tx.Where("user_id = ? AND id <> ?", id, keepSession).Delete(&sessionRow{}).Error
		}
		return nil
	})
	return u, err
}

// DeleteUser implements customer.Store. The sessions go with the user (ON DELETE CASCADE);
// what DeleteWith adds commits with them.
func (s *Store) DeleteUser(ctx context.Context, id string, cond etag.Condition) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockAdmins(tx); err != nil {
			return err
		}
		if err := s.checkUser(tx, id, cond); err != nil {
			return err
		}
		res := tx.Where("id = ?", id).Where(anotherAdmin).Delete(&userRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected > 0 {
			if s.deleted == nil {
				return nil
			}
			return s.deleted(ctx, tx, id)
		}
		if _, err := s.first(tx.Where("id = ?", id)); err != nil {
			return err
		}
		return customer.ErrLastAdmin
	})
}

// ExistingUsers implements customer.Store.
func (s *Store) ExistingUsers(ctx context.Context, ids []string) ([]string, error) {
	var found []string
	err := s.db.WithContext(ctx).Model(&userRow{}).Where("id IN ?", ids).Pluck("id", &found).Error
	return found, err
}

// checkUser returns etag.ErrMismatch if cond is a precondition the user's current ETag does not
// satisfy, or ErrNotFound. It locks the user's row until tx ends, so that the write after the
// check sees the row the check saw.
func (s *Store) checkUser(tx *gorm.DB, id string, cond etag.Condition) error {
	if !cond.Present() {
		return nil
	}
	u, err := s.first(database.ForUpdate(tx).Where("id = ?", id))
	if err != nil {
		return err
	}
	return cond.Check(u.ETag())
}

// SetPassword implements customer.Store.
func (s *Store) SetPassword(ctx context.Context, id, hash string, now time.Time) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := database.Changed(tx.Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{"password_hash": hash, "updated_at": now}), customer.ErrNotFound); err != nil {
			return err
		}
		return tx.Where("user_id = ?", id).Delete(&sessionRow{}).Error
	})
}

// createSessionSQL inserts a session only while its user's password hash is the one that was
// verified. On PostgreSQL, FOR NO KEY UPDATE makes it wait for a password change that has
// updated the row but not committed yet, and then see the new hash; a change that starts after
// it waits for it, and its DELETE then sees the new session. The lock also makes one user's
// logins take turns, so that each one's trim (trimSessionsSQL, a later statement) sees the
// sessions the others committed, and the cap holds however many log in at once (FOR SHARE,
// which logins share, let each trim miss the others' sessions). SQLite runs one writing
// transaction at a time. Arguments: id, user_id, expires_at, created_at, user id, hash.
const createSessionSQL = `INSERT INTO sessions (id, user_id, expires_at, created_at)
SELECT ?, id, ?, ? FROM users WHERE id = ? AND password_hash = ?`

// trimSessionsSQL revokes a user's sessions beyond the newest n (IDs are UUIDv7s, so they
// order sessions created in one microsecond). Arguments: user id, user id, n.
const trimSessionsSQL = `DELETE FROM sessions WHERE user_id = ? AND id NOT IN
(SELECT id FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?)`

// CreateSession implements customer.Store.
func (s *Store) CreateSession(ctx context.Context, sess customer.Session, passwordHash string, maxSessions int) error {
	insert := createSessionSQL
	if database.Dialect(s.db) == "postgres" {
		insert += " FOR NO KEY UPDATE"
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(insert, sess.ID, sess.ExpiresAt, sess.CreatedAt, sess.UserID, passwordHash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return customer.ErrUnauthenticated
		}
		return tx.Exec(trimSessionsSQL, sess.UserID, sess.UserID, maxSessions).Error
	})
}

// DeleteSession implements customer.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Where("id = ?", id).Delete(&sessionRow{}).Error
}

// SessionSweepLock names the lock a sweep of expired sessions holds (database.Exclusively).
const SessionSweepLock = "customers:sweep-sessions"

// DeleteExpiredSessions implements customer.Store. Every replica runs the sweep; the one that
// takes the lock deletes, and the others skip their turn rather than delete the same rows
// behind it.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := database.Exclusively(ctx, s.db, SessionSweepLock, func(tx *gorm.DB) error {
		return tx.Where("expires_at <= ?", now).Delete(&sessionRow{}).Error
	})
	return err
}

// sessionBatchSize bounds the sessions looked up by one query.
const sessionBatchSize = 64

// SessionUser implements customer.Store. It is the hot path of the whole system (cart asks for
// it on every authenticated request), so it skips gorm's reflection, and concurrent lookups
// share one query (package batch): under load, the round trip, not the index lookup, is the
// cost. A lookup is only ever answered by a query that started after it was asked, so a
// session deleted before the call is never seen.
func (s *Store) SessionUser(ctx context.Context, sessionID string, now time.Time) (customer.User, error) {
	su, found, err := s.sessions.Load(ctx, sessionID)
	if err != nil {
		return customer.User{}, err
	}
	if !found || !su.expiresAt.After(now) {
		return customer.User{}, customer.ErrNotFound
	}
	return su.user, nil
}

// SessionUsers implements customer.Store: the sessions of one ValidateTokens call, which cart
// has batched already, read with one query (PostgreSQL) that starts now, without queueing
// behind the single lookups' loader. Like a batched lookup, it takes at most
// database.LookupTimeout.
func (s *Store) SessionUsers(ctx context.Context, sessionIDs []string, now time.Time) (map[string]customer.User, error) {
	if s.observe != nil {
		s.observe(len(sessionIDs))
	}
	ctx, cancel := context.WithTimeout(ctx, database.LookupTimeout)
	defer cancel()
	found, err := s.manySessions(ctx, sessionIDs)
	if err != nil {
		return nil, err
	}
	users := make(map[string]customer.User, len(found))
	for id, su := range found {
		if su.expiresAt.After(now) {
			users[id] = su.user
		}
	}
	return users, nil
}

// sessionUsersAtOnce looks up a batch of sessions with one query (PostgreSQL).
func (s *Store) sessionUsersAtOnce(ctx context.Context, ids []string) (map[string]sessionUser, error) {
	rows, err := s.sessionsQuery.Rows(ctx, ids)
	if err != nil {
		return nil, err
	}
	return scanSessionUsers(rows, len(ids))
}

// lookupSession looks up one session (SQLite: it runs in-process, with no round trip to save,
// and has no array parameters).
func (s *Store) lookupSession(ctx context.Context, id string) (sessionUser, bool, error) {
	rows, err := s.sessionQuery.Rows(ctx, id)
	if err != nil {
		return sessionUser{}, false, err
	}
	found, err := scanSessionUsers(rows, 1)
	su, ok := found[id]
	return su, ok, err
}

var _ customer.Store = (*Store)(nil)
