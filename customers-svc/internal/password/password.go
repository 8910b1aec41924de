// Package password hashes passwords with argon2id (github.com/alexedwards/argon2id), in the PHC
// string format that records the parameters next to the salt and key.
package password

import (
	"runtime"

	"github.com/alexedwards/argon2id"
)

// OWASP is the OWASP Password Storage Cheat Sheet's first argon2id configuration: 19 MiB of
// memory, 2 iterations, 1 degree of parallelism.
var OWASP = argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Hasher hashes and verifies passwords. At most as many hashes run at once as there are CPUs:
// each takes Memory of RAM, so unbounded parallel logins would be a memory exhaustion attack.
type Hasher struct {
	params argon2id.Params
	slots  chan struct{}
}

// New returns a Hasher with the given parameters (OWASP in production; tests may use cheaper
// ones).
func New(params argon2id.Params) *Hasher {
	return &Hasher{params: params, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// Hash returns the PHC string of password with a fresh random salt.
func (h *Hasher) Hash(password string) (string, error) {
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return argon2id.CreateHash(password, &h.params)
}

// Verify reports whether password matches hash, comparing in constant time. It uses the
// parameters recorded in hash, so hashes made with older parameters keep working.
func (h *Hasher) Verify(password, hash string) (bool, error) {
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return argon2id.ComparePasswordAndHash(password, hash)
}
