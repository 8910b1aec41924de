// Package logging builds the services' structured loggers.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger that writes format ("text" or "json") to w at level ("debug", "info",
// "warn" or "error"). It redacts nothing by itself: secrets are redacted by their type
// (package secret), and code never passes passwords or tokens to the logger.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}
