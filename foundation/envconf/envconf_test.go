package envconf

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestReaderDefaultsAndValues(t *testing.T) {
	r := New(env(map[string]string{
		"S": " value ", "I": "42", "B": "yes", "D": "3s", "O": "JSON",
	}))
	if got := r.String("S", "def"); got != "value" {
		t.Errorf("String = %q, want %q", got, "value")
	}
	if got := r.String("MISSING", "def"); got != "def" {
		t.Errorf("String(missing) = %q, want def", got)
	}
	if got := r.Int("I", 1, 0, 100); got != 42 {
		t.Errorf("Int = %d, want 42", got)
	}
	if got := r.Bool("B", false); !got {
		t.Errorf("Bool = false, want true")
	}
	if got := r.Duration("D", time.Second); got != 3*time.Second {
		t.Errorf("Duration = %v, want 3s", got)
	}
	if got := r.OneOf("O", "text", "text", "json"); got != "json" {
		t.Errorf("OneOf = %q, want json", got)
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
}

func TestReaderNamesEveryBadVariable(t *testing.T) {
	r := New(env(map[string]string{
		"PORT": "99999", "FLAG": "maybe", "WAIT": "-1s", "MODE": "loud", "NUM": "x",
	}))
	r.Int("PORT", 1, 1, 65535)
	r.Bool("FLAG", false)
	r.Duration("WAIT", time.Second)
	r.OneOf("MODE", "a", "a", "b")
	r.Int("NUM", 1, 0, 10)
	err := r.Err()
	if err == nil {
		t.Fatal("Err = nil, want errors")
	}
	for _, name := range []string{"PORT", "FLAG", "WAIT", "MODE", "NUM"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
