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

func TestURLRedactsThePassword(t *testing.T) {
	u := secret.URL("postgres://shop:hunter2-password@db:5432/shop?sslmode=disable")
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "dsn", u)
	for name, out := range map[string]string{"log": logs.String(), "%v": fmt.Sprintf("%v", u), "String": u.String()} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "shop:xxxxx@db:5432") {
			t.Errorf("%s output = %q, want the password redacted", name, out)
		}
	}
	if got := secret.URL("postgres://a b@%zz").Redacted(); got != "(unparsable)" {
		t.Errorf("unparsable URL = %q", got)
	}
}
