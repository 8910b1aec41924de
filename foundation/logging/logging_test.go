package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewRedactsSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, format, "info")
			if err != nil {
				t.Fatal(err)
			}
			log.Info("login", "email", "a@example.com", "password", "hunter22", "access_token", "eyJhbGciOi", "Authorization", "Bearer eyJ")
			out := buf.String()
			for _, secret := range []string{"hunter22", "eyJhbGciOi", "Bearer eyJ"} {
				if strings.Contains(out, secret) {
					t.Errorf("log line contains secret %q: %s", secret, out)
				}
			}
			if !strings.Contains(out, "a@example.com") {
				t.Errorf("log line lost a non-secret attribute: %s", out)
			}
		})
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct{ name, format, level string }{
		{"bad format", "xml", "info"},
		{"bad level", "text", "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(&bytes.Buffer{}, tt.format, tt.level); err == nil {
				t.Errorf("New(%q, %q) succeeded, want an error", tt.format, tt.level)
			}
		})
	}
}

func TestNewHonoursLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "text", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("quiet")
	if buf.Len() != 0 {
		t.Errorf("info line written at level warn: %q", buf.String())
	}
}
