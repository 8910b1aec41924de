package password

import (
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	h := New(OWASP)
	hash, err := h.Hash("testPass123")
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
		got, err := h.Verify(tt.password, hash)
		if err != nil || got != tt.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tt.password, got, err, tt.want)
		}
	}
	again, err := h.Hash("testPass123")
	if err != nil {
		t.Fatal(err)
	}
	if again == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyRejectsGarbage(t *testing.T) {
	if _, err := New(OWASP).Verify("x", "not a hash"); err == nil {
		t.Error("Verify accepted a malformed hash")
	}
}

func BenchmarkHashOWASP(b *testing.B) {
	h := New(OWASP)
	for b.Loop() {
		if _, err := h.Hash("testPass123"); err != nil {
			b.Fatal(err)
		}
	}
}
