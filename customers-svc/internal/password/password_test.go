package password

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alexedwards/argon2id"
)

func TestHashAndVerify(t *testing.T) {
	h := New(OWASP, 0)
	hash, err := h.Hash(t.Context(), "testPass123")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not record the OWASP parameters", hash)
	}
	if strings.Contains(hash, "testPass123") {
		t.Error("hash contains the password")
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{{"testPass123", true}, {"testPass124", false}, {"", false}} {
		got, err := h.Verify(t.Context(), tt.password, hash)
		if err != nil || got != tt.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tt.password, got, err, tt.want)
		}
	}
	again, err := h.Hash(t.Context(), "testPass123")
	if err != nil {
		t.Fatal(err)
	}
	if again == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyRejectsGarbage(t *testing.T) {
	if _, err := New(OWASP, 0).Verify(t.Context(), "x", "not a hash"); err == nil {
		t.Error("Verify accepted a malformed hash")
	}
}

func BenchmarkHashOWASP(b *testing.B) {
	h := New(OWASP, 0)
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "testPass123"); err != nil {
			b.Fatal(err)
		}
	}
}

// cheap keeps the queue tests fast; the queue does not depend on the parameters.
var cheap = argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// holdAll takes every slot of q until the test ends.
func holdAll(t *testing.T, q *queue) {
	t.Helper()
	for range cap(q.slots) {
		release, err := q.acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
	}
}

// TestFullQueueRefusesAtOnce: with every slot busy and the queue full, a call is refused with
// ErrBusy at once instead of joining an unbounded line.
func TestFullQueueRefusesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(cheap, 2)
		holdAll(t, h.all)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		waiting := make(chan error, 2)
		for range 2 {
			go func() { _, err := h.Verify(ctx, "pw", "hash"); waiting <- err }()
		}
		synctest.Wait()
		if n := h.all.waiting.Load(); n != 2 {
			t.Fatalf("%d callers waiting, want 2", n)
		}
		if _, err := h.Verify(t.Context(), "pw", "hash"); !errors.Is(err, ErrBusy) {
			t.Errorf("Verify with a full queue = %v, want ErrBusy", err)
		}
		if _, err := h.Hash(t.Context(), "pw"); !errors.Is(err, ErrBusy) {
			t.Errorf("Hash with a full queue = %v, want ErrBusy", err)
		}
		cancel()
		for range 2 {
			if err := <-waiting; !errors.Is(err, context.Canceled) {
				t.Errorf("waiting call = %v, want context.Canceled", err)
			}
		}
	})
}

// TestCallerThatGaveUpFreesItsPlace: a waiting caller whose context ends leaves the queue at
// once (its place goes to the next caller), and a caller that had already given up gets no
// work done even when a slot is free.
func TestCallerThatGaveUpFreesItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(cheap, 1)
		gone, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := h.Hash(gone, "pw"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Hash for a caller that gave up = %v, want context.Canceled", err)
		}
		holdAll(t, h.all)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if _, err := h.Verify(ctx, "pw", "hash"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Verify past its deadline = %v, want context.DeadlineExceeded", err)
		}
		if n := h.all.waiting.Load(); n != 0 {
			t.Errorf("%d callers still waiting after theirs gave up, want 0", n)
		}
	})
}

// TestNewPasswordsLeaveSlotsForLogins: however many registrations hash at once, they hold at
// most half the slots (at least one), so a login's Verify finds a slot while they wait.
func TestNewPasswordsLeaveSlotsForLogins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(cheap, 8)
		holdAll(t, h.create)
		// Hash calls now wait behind create and take no slot of all.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		for range 8 {
			go func() { _, _ = h.Hash(ctx, "pw") }()
		}
		synctest.Wait()
		if n := h.create.waiting.Load(); n != 8 {
			t.Fatalf("%d Hash calls waiting, want 8", n)
		}
		if _, err := h.Hash(t.Context(), "pw"); !errors.Is(err, ErrBusy) {
			t.Errorf("ninth waiting Hash = %v, want ErrBusy", err)
		}
		hash, err := argon2id.CreateHash("pw", &cheap)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := h.Verify(t.Context(), "pw", hash); err != nil || !ok {
			t.Errorf("Verify during a flood of Hash calls = %v, %v; want true, nil", ok, err)
		}
	})
}
