package database_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/shop/foundation/database"
)

func TestIsUnavailable(t *testing.T) {
	// A real refused connection: nothing listens on port 1.
	_, refused := database.Open(context.Background(), database.Config{DSN: "postgres://x:y@127.0.0.1:1/z?connect_timeout=2"}, discard())
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused connection", refused, true},
		{"admin shutdown", fmt.Errorf("query: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"connection closed under the call", fmt.Errorf("update: %w", pgconn.ErrConnClosed), true},
		{"write on a standby", &pgconn.PgError{Code: "25006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"plain error", errors.New("boom"), false},
		{"cancelled", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := database.IsUnavailable(tt.err); got != tt.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
