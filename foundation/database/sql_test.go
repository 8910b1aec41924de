package database_test

import (
	"testing"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
)

func TestContainsPattern(t *testing.T) {
	for in, want := range map[string]string{"Ada": "%ada%", "100%_": `%100\%\_%`, `a\b`: `%a\\b%`, "": "%%"} {
		if got := database.ContainsPattern(in); got != want {
			t.Errorf("ContainsPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	const q = "SELECT $1, $2, $10"
	if got := database.Rebind(dbtest.SQLite(t), q); got != "SELECT ?, ?, ?" {
		t.Errorf("SQLite: %q", got)
	}
	if got := database.Rebind(dbtest.Postgres(t), q); got != q {
		t.Errorf("PostgreSQL: %q", got)
	}
}
