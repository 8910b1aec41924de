package customer_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/acme/shop/foundation/etag"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// memStore is an in-memory customer.Store for domain tests.
type memStore struct {
	mu       sync.Mutex
	users    map[string]customer.User
	sessions map[string]customer.Session
}

func newMemStore() *memStore {
	return &memStore{users: map[string]customer.User{}, sessions: map[string]customer.Session{}}
}

func (m *memStore) CreateUser(_ context.Context, u customer.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.users {
		if o.Email == u.Email {
			return customer.ErrEmailTaken
		}
	}
	m.users[u.ID] = u
	return nil
}

func (m *memStore) User(_ context.Context, id string) (customer.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return customer.User{}, customer.ErrNotFound
	}
	return u, nil
}

func (m *memStore) UserByEmail(_ context.Context, email string) (customer.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		if u.Email == email {
			return u, nil
		}
	}
	return customer.User{}, customer.ErrNotFound
}

func (m *memStore) ListUsers(_ context.Context, q customer.ListQuery) ([]customer.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []customer.User
	for _, u := range m.users {
		if q.After != nil && u.ID <= q.After.ID {
			continue
		}
		if q.Search != "" && !strings.Contains(strings.ToLower(u.Email+" "+u.FirstName+" "+u.LastName), strings.ToLower(q.Search)) {
			continue
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (m *memStore) UpdateUser(_ context.Context, id string, c customer.Changes, cond etag.Condition, now time.Time) (customer.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return customer.User{}, customer.ErrNotFound
	}
	if err := cond.Check(u.ETag()); err != nil {
		return customer.User{}, err
	}
	if c.Email != nil {
		for _, o := range m.users {
			if o.ID != id && o.Email == *c.Email {
				return customer.User{}, customer.ErrEmailTaken
			}
		}
		u.Email = *c.Email
	}
	if c.FirstName != nil {
		u.FirstName = *c.FirstName
	}
	if c.LastName != nil {
		u.LastName = *c.LastName
	}
	if c.IsAdmin != nil {
		u.IsAdmin = *c.IsAdmin
	}
	u.UpdatedAt = now
	m.users[id] = u
	return u, nil
}

func (m *memStore) DeleteUser(_ context.Context, id string, cond etag.Condition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return customer.ErrNotFound
	}
	if err := cond.Check(u.ETag()); err != nil {
		return err
	}
	delete(m.users, id)
	for k, s := range m.sessions {
		if s.UserID == id {
			delete(m.sessions, k)
		}
	}
	return nil
}

func (m *memStore) SetPassword(_ context.Context, id, hash string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return customer.ErrNotFound
	}
	u.PasswordHash, u.UpdatedAt = hash, now
	m.users[id] = u
	for k, s := range m.sessions {
		if s.UserID == id {
			delete(m.sessions, k)
		}
	}
	return nil
}

func (m *memStore) CreateSession(_ context.Context, s customer.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ID] = s
	return nil
}

func (m *memStore) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	return nil
}

func (m *memStore) DeleteExpiredSessions(_ context.Context, userID string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.sessions {
		if s.UserID == userID && !s.ExpiresAt.After(now) {
			delete(m.sessions, k)
		}
	}
	return nil
}

func (m *memStore) SessionUser(_ context.Context, id string, now time.Time) (customer.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || !s.ExpiresAt.After(now) {
		return customer.User{}, customer.ErrNotFound
	}
	u, ok := m.users[s.UserID]
	if !ok {
		return customer.User{}, customer.ErrNotFound
	}
	u.PasswordHash = ""
	return u, nil
}

// plainHasher "hashes" by prefixing, and counts verifications, so tests can check that unknown
// emails cost a verification too.
type plainHasher struct {
	mu       sync.Mutex
	verified int
}

func (h *plainHasher) Hash(pw string) (string, error) { return "hash:" + pw, nil }

func (h *plainHasher) Verify(pw, hash string) (bool, error) {
	h.mu.Lock()
	h.verified++
	h.mu.Unlock()
	return hash == "hash:"+pw, nil
}

func (h *plainHasher) verifications() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.verified
}

// fakeTokens encodes claims as "userID|sessionID".
type fakeTokens struct{}

func (fakeTokens) Issue(c customer.Claims, _, _ time.Time) (string, error) {
	return c.UserID + "|" + c.SessionID, nil
}

func (fakeTokens) Parse(tok string) (customer.Claims, error) {
	u, s, ok := strings.Cut(tok, "|")
	if !ok {
		return customer.Claims{}, customer.ErrUnauthenticated
	}
	return customer.Claims{UserID: u, SessionID: s}, nil
}

// memCounter is an in-memory customer.Counter for domain tests; customerdb's is tested against
// the databases.
type memCounter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	failures int
	ends     time.Time
}

func newMemCounter() *memCounter { return &memCounter{buckets: map[string]*bucket{}} }

func (m *memCounter) CountFailure(_ context.Context, now time.Time, window time.Duration, limits []customer.Limit) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var wait time.Duration
	for _, l := range limits {
		if b := m.buckets[l.Key]; b != nil && now.Before(b.ends) && b.failures >= l.Max {
			wait = max(wait, b.ends.Sub(now))
		}
	}
	if wait > 0 {
		return wait, nil
	}
	for _, l := range limits {
		b := m.buckets[l.Key]
		if b == nil || !now.Before(b.ends) {
			b = &bucket{ends: now.Add(window)}
			m.buckets[l.Key] = b
		}
		b.failures++
	}
	return 0, nil
}

func (m *memCounter) UncountFailure(_ context.Context, now time.Time, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if b := m.buckets[k]; b != nil && now.Before(b.ends) && b.failures > 0 {
			b.failures--
		}
	}
	return nil
}

func (m *memCounter) ClearFailures(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.buckets, key)
	return nil
}

func (m *memCounter) DeleteClosedWindows(context.Context, time.Time) error { return nil }
