// Package secret holds values that must never reach a log line or an error message: signing
// keys and the like. A Value is redacted by its type, wherever it is logged or printed, rather
// than by guessing from the name of the attribute it travels under.
package secret

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
)

// MinLen is the shortest signing secret accepted: 32 bytes, the output size of HMAC-SHA256.
const MinLen = 32

// Redacted is what a Value logs and prints as.
const Redacted = "[REDACTED]"

// Value is a secret. It logs (slog.LogValuer) and prints (fmt) as Redacted; Reveal returns it.
type Value struct {
	b []byte
}

// New returns s as a Value.
func New(s string) Value { return Value{b: []byte(s)} }

// Reveal returns the secret itself, for the code that signs or verifies with it.
func (v Value) Reveal() []byte { return v.b }

// Len is the secret's length in bytes.
func (v Value) Len() int { return len(v.b) }

// Equal reports whether v is s.
func (v Value) Equal(s string) bool { return string(v.b) == s }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String implements fmt.Stringer.
func (Value) String() string { return Redacted }

// Format implements fmt.Formatter, so that no verb (%x, %#v included) prints the bytes.
func (Value) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, Redacted) }

// UnmarshalText reads a signing secret from configuration: at least MinLen bytes.
func (v *Value) UnmarshalText(b []byte) error {
	if len(b) < MinLen {
		return fmt.Errorf("must be at least %d bytes, got %d (e.g. `openssl rand -base64 48`)", MinLen, len(b))
	}
	v.b = slices.Clone(b)
	return nil
}

// URL is a URL that may carry a password (a database DSN): it logs and prints with the
// password redacted, and as "(unparsable)" when it does not parse.
type URL string

// Redacted returns the URL with its password replaced by "xxxxx".
func (u URL) Redacted() string {
	parsed, err := url.Parse(string(u))
	if err != nil {
		return "(unparsable)"
	}
	return parsed.Redacted()
}

// LogValue implements slog.LogValuer.
func (u URL) LogValue() slog.Value { return slog.StringValue(u.Redacted()) }

// String implements fmt.Stringer.
func (u URL) String() string { return u.Redacted() }
