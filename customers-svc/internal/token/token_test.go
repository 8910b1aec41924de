package token

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/acme/shop/foundation/secret"

	"github.com/acme/shop/customers-svc/internal/customer"
)

var (
	testKey = []byte("0123456789abcdef0123456789abcdef")
	t0      = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	claims  = customer.Claims{UserID: "user-1", SessionID: "session-1"}
)

func newJWT(t *testing.T, now time.Time) *JWT {
	t.Helper()
	j, err := New(secret.New(string(testKey)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRoundTrip(t *testing.T) {
	j := newJWT(t, t0)
	tok, err := j.Issue(claims, t0, t0.Add(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Parse(tok)
	if err != nil || got != claims {
		t.Errorf("Parse = %+v, %v; want %+v", got, err, claims)
	}
}

func TestNewRejectsShortSecret(t *testing.T) {
	if _, err := New(secret.New("short"), time.Now); err == nil {
		t.Error("New accepted a 5-byte testKey")
	}
}

// TestParseRejects covers the forged and stale tokens an attacker could present.
func TestParseRejects(t *testing.T) {
	j := newJWT(t, t0)
	valid, err := j.Issue(claims, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(method jwt.SigningMethod, key any, c jwt.RegisteredClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.RegisteredClaims{
		Issuer: Issuer, Subject: "user-1", ID: "session-1",
		IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute)),
	}
	with := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := good
		f(&c)
		return c
	}
	parts := strings.Split(valid, ".")
	alteredPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"customers","sub":"admin","jti":"session-1","iat":1767268800,"exp":1767268860}`))

	tests := map[string]string{
		"garbage":             "not-a-token",
		"empty":               "",
		"alg none":            sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"other key":           sign(jwt.SigningMethodHS256, []byte("another-testKey-another-testKey-32"), good),
		"HS512 same key":      sign(jwt.SigningMethodHS512, testKey, good),
		"altered payload":     parts[0] + "." + alteredPayload + "." + parts[2],
		"expired":             sign(jwt.SigningMethodHS256, testKey, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Second)) })),
		"no expiry":           sign(jwt.SigningMethodHS256, testKey, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
		"issued in future":    sign(jwt.SigningMethodHS256, testKey, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(t0.Add(time.Hour)) })),
		"wrong issuer":        sign(jwt.SigningMethodHS256, testKey, with(func(c *jwt.RegisteredClaims) { c.Issuer = "cart" })),
		"no subject":          sign(jwt.SigningMethodHS256, testKey, with(func(c *jwt.RegisteredClaims) { c.Subject = "" })),
		"no jti":              sign(jwt.SigningMethodHS256, testKey, with(func(c *jwt.RegisteredClaims) { c.ID = "" })),
		"signature truncated": valid[:len(valid)-4],
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := j.Parse(tok); err == nil {
				t.Errorf("Parse accepted a %s token: %+v", name, got)
			}
		})
	}
}

func TestTokenExpiresWithClock(t *testing.T) {
	tok, err := newJWT(t, t0).Issue(claims, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newJWT(t, t0.Add(time.Minute+time.Second)).Parse(tok); err == nil {
		t.Error("token still valid after its expiry")
	}
}

// BenchmarkParse measures the verification every ValidateToken call pays
// (docs/performance.md).
func BenchmarkParse(b *testing.B) {
	j, err := New(secret.New(string(testKey)), func() time.Time { return t0 })
	if err != nil {
		b.Fatal(err)
	}
	tok, err := j.Issue(customer.Claims{UserID: "01a21b73-7342-7d4d-ab5e-6d29908c183b", SessionID: "4f0c1f3e-2b0a-4c57-9a3e-2f1d5e6b7a80"}, t0, t0.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
