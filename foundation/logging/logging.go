// Package logging builds the services' structured loggers.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// redacted replaces the value of any attribute whose key names a secret.
const redacted = "[REDACTED]"

// secretKeys are substrings of attribute keys whose values are never written. It is a last line
// of defence: code should not pass secrets to the logger in the first place.
var secretKeys = []string{"password", "token", "secret", "authorization", "hash", "dsn", "database_url"}

// New returns a logger that writes format ("text" or "json") to w at level ("debug", "info",
// "warn" or "error") and redacts attributes whose keys name secrets.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redact}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

func redact(_ []string, a slog.Attr) slog.Attr {
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, redacted)
	}
	return a
}

// IsSecretKey reports whether an attribute or metadata key names a secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range secretKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
