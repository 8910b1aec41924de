package secret_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/secret"
)

const plain = "very-secret-value-0123456789abcdef"

func TestValueNeverPrints(t *testing.T) {
	v := secret.New(plain)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("config", "jwt_secret", v, "nested", slog.GroupValue(slog.Any("key", v)), "plain", struct{ Key secret.Value }{v})
	for name, out := range map[string]string{
		"log": logs.String(),
		"%v":  fmt.Sprintf("%v", v),
		"%s":  fmt.Sprintf("%s", v),
		"%x":  fmt.Sprintf("%x", v),
		"%#v": fmt.Sprintf("%#v", v),
		"%+v": fmt.Sprintf("%+v", struct{ Key secret.Value }{v}),
		"err": fmt.Errorf("wrapped %v", v).Error(),
	} {
		if strings.Contains(out, plain) || strings.Contains(out, fmt.Sprintf("%x", plain)) {
			t.Errorf("%s output contains the secret: %s", name, out)
		}
		if !strings.Contains(out, secret.Redacted) {
			t.Errorf("%s output = %q, want %s in it", name, out, secret.Redacted)
		}
	}
	if got := string(v.Reveal()); got != plain {
		t.Errorf("Reveal() = %q, want %q", got, plain)
	}
	if !v.Equal(plain) || v.Equal("other") || v.Len() != len(plain) {
		t.Errorf("Equal/Len disagree with the value")
	}
}

func TestUnmarshalText(t *testing.T) {
	var v secret.Value
	if err := v.UnmarshalText([]byte("short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short secret: %v, want an error that does not print it", err)
	}
	if err := v.UnmarshalText([]byte(plain)); err != nil || !v.Equal(plain) {
		t.Errorf("UnmarshalText(%d bytes) = %v, value %q", len(plain), err, v.Reveal())
	}
}

// TestURLRedactsThePassword: a DSN's passwords are redacted wherever they sit (the URL's user
// part, its query, libpq's key/value form, quoted or not), in logs and with every fmt verb,
// and the rest of the DSN stays readable.
func TestURLRedactsThePassword(t *testing.T) {
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"user part", "postgres://shop:hunter2-password@db:5432/shop?sslmode=disable", "postgres://shop:xxxxx@db:5432/shop?sslmode=disable"},
		{"query", "postgres://shop@db:5432/shop?sslmode=disable&password=hunter2-password", "postgres://shop@db:5432/shop?sslmode=disable&password=xxxxx"},
		{"query, first and escaped", "postgres://db/shop?pass%77ord=hunter2%2Dpassword&user=shop", "postgres://db/shop?pass%77ord=xxxxx&user=shop"},
		{"query, key passphrase", "postgresql://shop@db/shop?sslkey=k.pem&sslpassword=hunter2-password", "postgresql://shop@db/shop?sslkey=k.pem&sslpassword=xxxxx"},
		{"both", "postgres://shop:hunter2-password@db/shop?password=hunter2-password", "postgres://shop:xxxxx@db/shop?password=xxxxx"},
		{"key/value", "host=db user=shop password=hunter2-password dbname=shop", "host=db user=shop password=xxxxx dbname=shop"},
		{"key/value, spaced and quoted", "host = db  password = 'hunter2 \\' password' dbname=shop", "host=db password=xxxxx dbname=shop"},
		{"key/value, escaped space", `password=hunter2\ password host=db`, "password=xxxxx host=db"},
		{"no password", "postgres://shop@db/shop", "postgres://shop@db/shop"},
		{"empty", "", ""},
		{"unparsable URL", "postgres://a b@%zz", "(unparsable)"},
		{"unterminated quote", "password='hunter2-password", "(unparsable)"},
		{"not a DSN", "hunter2-password", "(unparsable)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := secret.URL(tc.dsn)
			if got := u.Redacted(); got != tc.want {
				t.Errorf("Redacted() = %q, want %q", got, tc.want)
			}
			var logs bytes.Buffer
			slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "dsn", u)
			for name, out := range map[string]string{
				"log": logs.String(), "String": u.String(),
				"%v": fmt.Sprintf("%v", u), "%s": fmt.Sprintf("%s", u), "%q": fmt.Sprintf("%q", u),
				"%#v": fmt.Sprintf("%#v", u), "%+v": fmt.Sprintf("%+v", struct{ DSN secret.URL }{u}),
			} {
				if strings.Contains(out, "hunter2") {
					t.Errorf("%s output = %q, want the password redacted", name, out)
				}
			}
		})
	}
}
