package replicaset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/acme/shop/foundation/database/dbtest"
)

// TestEnsureDatabase: a missing database is created, an existing one kept, and the DSN
// returned reaches it.
func TestEnsureDatabase(t *testing.T) {
	existing := dbtest.PostgresDSN(t) // skips (fails in CI) without PostgreSQL
	u, err := url.Parse(existing)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	missing := "replicaset_" + hex.EncodeToString(b)
	admin := dbtest.AdminURL()
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("connect to drop %s: %v", missing, err)
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+missing+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", missing, err)
		}
	})
	for _, name := range []string{strings.TrimPrefix(u.Path, "/"), missing, missing} {
		dsn, err := EnsureDatabase(t.Context(), admin, name)
		if err != nil {
			t.Fatalf("EnsureDatabase(%s): %v", name, err)
		}
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect to %s: %v", name, err)
		}
		var got string
		err = conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&got)
		_ = conn.Close(t.Context())
		if err != nil || got != name {
			t.Errorf("connected to %q (%v), want %q", got, err, name)
		}
	}
}

func TestThroughPgBouncer(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{
			"postgres://shop:shop@127.0.0.1:5432/shop_cart?sslmode=disable",
			"postgres://shop:shop@127.0.0.1:6432/shop_cart?default_query_exec_mode=exec&sslmode=disable",
		},
		{
			"postgres://shop:shop@localhost/shop_customers?default_query_exec_mode=cache_statement",
			"postgres://shop:shop@127.0.0.1:6432/shop_customers?default_query_exec_mode=exec",
		},
	} {
		got, err := ThroughPgBouncer(tc.dsn, 6432)
		if err != nil || got != tc.want {
			t.Errorf("ThroughPgBouncer(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
}
