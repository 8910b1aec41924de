package customer_test

import (
	"context"
	"maps"
	"slices"
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
	// sessionUsersCalls counts the calls of SessionUsers.
	sessionUsersCalls int
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

func (m *memStore) UpdateUser(_ context.Context, id string, c customer.Changes, cond etag.Condition, now time.Time, keep string) (customer.User, error) {
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
		m.revoke(id, keep)
	}
	if c.FirstName != nil {
		u.FirstName = *c.FirstName
	}
	if c.LastName != nil {
		u.LastName = *c.LastName
	}
	if c.IsAdmin != nil {
		if u.IsAdmin && !*c.IsAdmin && m.lastAdmin(id) {
			return customer.User{}, customer.ErrLastAdmin
		}
		u.IsAdmin = *c.IsAdmin
	}
	u.UpdatedAt = now
	m.users[id] = u
	return u, nil
}

func (m *memStore) ExistingUsers(_ context.Context, ids []string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var found []string
	for _, id := range ids {
		if _, ok := m.users[id]; ok && !slices.Contains(found, id) {
			found = append(found, id)
		}
	}
	return found, nil
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
	if u.IsAdmin && m.lastAdmin(id) {
		return customer.ErrLastAdmin
	}
	delete(m.users, id)
	m.revoke(id, "")
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
	m.revoke(id, "")
	return nil
}

// revoke deletes every session of the user but keep ("" for none); m.mu is held.
func (m *memStore) revoke(userID, keep string) {
	maps.DeleteFunc(m.sessions, func(id string, s customer.Session) bool { return s.UserID == userID && id != keep })
}

// lastAdmin reports whether no admin but id is left; m.mu is held.
func (m *memStore) lastAdmin(id string) bool {
	for _, o := range m.users {
		if o.IsAdmin && o.ID != id {
			return false
		}
	}
	return true
}

func (m *memStore) CreateSession(_ context.Context, s customer.Session, hash string, maxSessions int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[s.UserID]; !ok || u.PasswordHash != hash {
		return customer.ErrUnauthenticated
	}
	m.sessions[s.ID] = s
	var mine []customer.Session
	for _, o := range m.sessions {
		if o.UserID == s.UserID {
			mine = append(mine, o)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].ID > mine[j].ID })
	for _, o := range mine[min(len(mine), maxSessions):] {
		delete(m.sessions, o.ID)
	}
	return nil
}

func (m *memStore) sessionsOf(userID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.sessions {
		if s.UserID == userID {
			n++
		}
	}
	return n
}

func (m *memStore) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	return nil
}

func (m *memStore) DeleteExpiredSessions(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.sessions {
		if !s.ExpiresAt.After(now) {
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

func (m *memStore) SessionUsers(ctx context.Context, ids []string, now time.Time) (map[string]customer.User, error) {
	m.mu.Lock()
	m.sessionUsersCalls++
	m.mu.Unlock()
	out := make(map[string]customer.User, len(ids))
	for _, id := range ids {
		if u, err := m.SessionUser(ctx, id, now); err == nil {
			out[id] = u
		}
	}
	return out, nil
}

// plainHasher "hashes" by prefixing, and counts verifications, so tests can check that unknown
// emails cost a verification too. afterVerify, when set, runs after each verification: tests
// force a change to happen in the middle of a login with it.
type plainHasher struct {
	mu          sync.Mutex
	verified    int
	hashed      int
	afterVerify func()
}

func (h *plainHasher) Hash(_ context.Context, pw string) (string, error) {
	h.mu.Lock()
	h.hashed++
	h.mu.Unlock()
	return "hash:" + pw, nil
}

func (h *plainHasher) Verify(_ context.Context, pw, hash string) (bool, error) {
	h.mu.Lock()
	h.verified++
	after := h.afterVerify
	h.mu.Unlock()
	if after != nil {
		after()
	}
	return hash == "hash:"+pw, nil
}

func (h *plainHasher) hashes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hashed
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

func (m *memCounter) CountFailure(_ context.Context, now time.Time, window time.Duration, limits []customer.Limit) ([]string, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	open := func(k string) *bucket {
		if b := m.buckets[k]; b != nil && now.Before(b.ends) {
			return b
		}
		return nil
	}
	var wait time.Duration
	clean, softFull := true, false
	for _, l := range limits {
		b := open(l.Key)
		switch {
		case b != nil && b.failures >= l.Max && l.Soft:
			softFull = true
		case b != nil && b.failures >= l.Max:
			wait = max(wait, b.ends.Sub(now))
		case b != nil && b.failures > 0 && !l.Soft:
			clean = false
		}
	}
	if wait == 0 && softFull && !clean {
		for _, l := range limits {
			if b := open(l.Key); b != nil && l.Soft && b.failures >= l.Max {
				wait = max(wait, b.ends.Sub(now))
			}
		}
	}
	if wait > 0 {
		return nil, wait, nil
	}
	var counted []string
	for _, l := range limits {
		b := open(l.Key)
		if b != nil && l.Soft && b.failures >= l.Max {
			continue
		}
		if b == nil {
			b = &bucket{ends: now.Add(window)}
			m.buckets[l.Key] = b
		}
		b.failures++
		counted = append(counted, l.Key)
	}
	return counted, 0, nil
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
