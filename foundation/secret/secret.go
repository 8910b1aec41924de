// Package secret holds values that must never reach a log line or an error message: signing
// keys and the like. A Value is redacted by its type, wherever it is logged or printed, rather
// than by guessing from the name of the attribute it travels under.
package secret

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
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

// Password is a credential of any length and characters, such as a database password. Unlike
// Value it has no minimum length (it is checked where it is used, not here). It logs and prints
// as Redacted.
type Password string

// LogValue implements slog.LogValuer.
func (Password) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String implements fmt.Stringer.
func (Password) String() string { return Redacted }

// Format implements fmt.Formatter, so that no verb prints it.
func (Password) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, Redacted) }

// URL is a database DSN, which may carry passwords: in a URL's user part
// (postgres://user:password@host/db), in its query (?password=…, ?sslpassword=…), or in the
// key/value form (host=db password='…'). It logs and prints with every password redacted, and
// as "(unparsable)" when it does not parse.
type URL string

// dsnSecrets are the DSN parameters that hold secrets: libpq's password and the passphrase of
// its client key.
var dsnSecrets = []string{"password", "sslpassword"}

// redactedPassword replaces a password, as url.URL.Redacted does.
const redactedPassword = "xxxxx"

// Redacted returns the DSN with each of its passwords replaced by "xxxxx".
func (u URL) Redacted() string {
	s := string(u)
	if s == "" {
		return ""
	}
	var (
		out string
		ok  bool
	)
	if strings.Contains(s, "://") {
		out, ok = redactURL(s)
	} else {
		out, ok = redactKeyValues(s)
	}
	if !ok {
		return "(unparsable)"
	}
	return out
}

// redactURL redacts the password of a URL's user part and the secret parameters of its query,
// keeping the rest as written.
func redactURL(s string) (string, bool) {
	parsed, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	if parsed.RawQuery != "" {
		params := strings.Split(parsed.RawQuery, "&")
		for i, p := range params {
			raw, _, _ := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(raw); err != nil || slices.Contains(dsnSecrets, strings.ToLower(name)) {
				params[i] = raw + "=" + redactedPassword
			}
		}
		parsed.RawQuery = strings.Join(params, "&")
	}
	return parsed.Redacted(), true
}

// redactKeyValues redacts the secret parameters of a DSN in libpq's key/value form:
// key = value pairs separated by spaces, a value single-quoted when it holds spaces, with \'
// and \\ escaped.
func redactKeyValues(s string) (string, bool) {
	var out strings.Builder
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return strings.TrimSuffix(out.String(), " "), true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return "", false
		}
		key := strings.TrimRight(s[:eq], " \t\n\r")
		if key == "" || strings.ContainsAny(key, " \t\n\r'\\") {
			return "", false
		}
		s = strings.TrimLeft(s[eq+1:], " \t\n\r")
		var value string
		if strings.HasPrefix(s, "'") {
			end, ok := closingQuote(s)
			if !ok {
				return "", false
			}
			value, s = s[:end+1], s[end+1:]
		} else {
			end := valueEnd(s)
			value, s = s[:end], s[end:]
		}
		if slices.Contains(dsnSecrets, strings.ToLower(key)) {
			value = redactedPassword
		}
		out.WriteString(key + "=" + value + " ")
	}
}

// valueEnd returns the index of the white space that ends the unquoted value s begins with,
// skipping backslash escapes, or len(s).
func valueEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ' ', '\t', '\n', '\r':
			return i
		}
	}
	return len(s)
}

// closingQuote returns the index of the quote that closes the single-quoted value s begins
// with, skipping backslash escapes.
func closingQuote(s string) (int, bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			return i, true
		}
	}
	return 0, false
}

// LogValue implements slog.LogValuer.
func (u URL) LogValue() slog.Value { return slog.StringValue(u.Redacted()) }

// String implements fmt.Stringer.
func (u URL) String() string { return u.Redacted() }

// Format implements fmt.Formatter, so that no verb (%q, %#v included) prints a password.
func (u URL) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", u.Redacted())
		return
	}
	_, _ = fmt.Fprint(f, u.Redacted())
}
