package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/secret"
)

func TestNewRedactsSecretsByType(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, format, "info")
			if err != nil {
				t.Fatal(err)
			}
			log.Info("starting", "jwt_secret", secret.New("hunter22-hunter22"), "dev_jwt_secret", true, "token_ttl", "15m")
			out := buf.String()
			if strings.Contains(out, "hunter22") {
				t.Errorf("log line contains the secret: %s", out)
			}
			// Attributes whose keys merely mention a secret or a token stay visible: the warning
			// that the public development secret is in use must be seen.
			for _, want := range []string{"dev_jwt_secret", "true", "token_ttl", "15m"} {
				if !strings.Contains(out, want) {
					t.Errorf("log line lost %q: %s", want, out)
				}
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
