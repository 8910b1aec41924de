package database_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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

func TestQuery(t *testing.T) {
	const q = `SELECT v FROM (SELECT 'a' AS v UNION ALL SELECT 'b' UNION ALL SELECT 'c') t WHERE v = ? OR v = ? ORDER BY v`
	for _, tt := range []struct {
		dialect, sql string
	}{
		{"postgres", `SELECT v FROM (SELECT 'a' AS v UNION ALL SELECT 'b' UNION ALL SELECT 'c') t WHERE v = $1 OR v = $2 ORDER BY v`},
		{"sqlite", q},
	} {
		t.Run(tt.dialect, func(t *testing.T) {
			query := database.NewQuery(dbtest.Open(t, tt.dialect), q)
			if got := query.String(); got != tt.sql {
				t.Errorf("bound SQL = %q, want %q", got, tt.sql)
			}
			rows, err := query.Rows(t.Context(), "c", "a")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rows.Close() }()
			var got []string
			for rows.Next() {
				var v string
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"a", "c"}, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestQueryArray passes a slice as one PostgreSQL array.
func TestQueryArray(t *testing.T) {
	query := database.NewQuery(dbtest.Postgres(t), `SELECT count(*) FROM (VALUES ('a'), ('b'), ('c')) t(v) WHERE v = ANY(?)`)
	for _, tt := range []struct {
		keys []string
		want int
	}{{[]string{"c", "a", "x"}, 2}, {[]string{"b"}, 1}, {[]string{}, 0}} {
		rows, err := query.Rows(t.Context(), tt.keys)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		_ = rows.Close()
		if n != tt.want {
			t.Errorf("ANY(%q) matched %d rows, want %d", tt.keys, n, tt.want)
		}
	}
}
