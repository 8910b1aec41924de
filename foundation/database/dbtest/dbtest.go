// Package dbtest gives tests their own throwaway database: a fresh PostgreSQL database per call,
// dropped when the test ends, or a fresh SQLite file; and the helpers the store and migration
// tests of both services share. A test that cannot reach PostgreSQL skips locally, and fails
// when the CI environment variable is set.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/etag"
)

// DefaultAdminURL is used when TEST_DATABASE_URL is unset: the role that .ci/run and
// `make db` create on the local PostgreSQL server.
const DefaultAdminURL = //nolint:gosec // the local test role's well-known password, not a secret
"postgres://shop:shop@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the DSN tests use to create and drop their databases.
func AdminURL() string {
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		return v
	}
	return DefaultAdminURL
}

// Dialects are the databases every store and migration test runs on.
var Dialects = []string{"postgres", "sqlite"}

// Open returns an empty database of the given dialect for this test.
func Open(t testing.TB, dialect string) *gorm.DB {
	t.Helper()
	switch dialect {
	case "postgres":
		return Postgres(t)
	case "sqlite":
		return SQLite(t)
	default:
		t.Fatalf("unknown dialect %q", dialect)
		return nil
	}
}

// Store returns the store that newStore makes on a new database of the given dialect, with
// migrations applied.
func Store[S any](t testing.TB, dialect string, migrations []*gormigrate.Migration, newStore func(*gorm.DB) (S, error)) S {
	t.Helper()
	db := Open(t, dialect)
	if err := database.Migrate(context.Background(), db, "test", migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s, err := newStore(db)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return s
}

// EachDialect runs f in a parallel subtest, named after the dialect, for every one of Dialects.
func EachDialect(t *testing.T, f func(t *testing.T, dialect string)) {
	t.Helper()
	for _, dialect := range Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			f(t, dialect)
		})
	}
}

// EachStore returns the function a store test package calls its tests with: it runs f in a
// parallel subtest for every dialect, each with its own store that newStore makes on a fresh
// database with migrations applied.
func EachStore[S any](migrations []*gormigrate.Migration, newStore func(*gorm.DB) (S, error)) func(t *testing.T, f func(t *testing.T, s S)) {
	return func(t *testing.T, f func(t *testing.T, s S)) {
		t.Helper()
		EachDialect(t, func(t *testing.T, dialect string) {
			f(t, Store(t, dialect, migrations, newStore))
		})
	}
}

// T0 is the time store tests write: in UTC, with microseconds, the finest precision every
// dialect keeps, so that what a store reads back equals what it wrote.
var T0 = time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC)

// OneWins runs write(i) for i from 0 to n-1 at once, as n clients that read the same etag
// and write with it, and fails t unless exactly one succeeded and every other failed its
// precondition (etag.ErrMismatch): a store checks the condition and writes in one step.
func OneWins(t testing.TB, n int, write func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Go(func() { errs[i] = write(i) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, etag.ErrMismatch):
			t.Errorf("concurrent write: %v, want nil or ErrMismatch", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent writes with one etag won, want 1", wins, n)
	}
}

// Migrations is a service's migration test, its migrations being all(demo): on every dialect,
// Stairway of all(true); then two fresh databases with demo data and one without, each read
// with take. It fails unless both demo databases read the same, and hands check what take read
// from a demo database and from the one without demo data.
func Migrations[S any](t *testing.T, all func(demo bool) []*gormigrate.Migration, take func(*testing.T, *gorm.DB) S, check func(t *testing.T, demo, none S)) {
	t.Helper()
	EachDialect(t, func(t *testing.T, dialect string) {
		Stairway(t, Open(t, dialect), all(true))
		migrated := func(demo bool) S {
			db := Open(t, dialect)
			if err := database.Migrate(context.Background(), db, "test", all(demo)); err != nil {
				t.Fatalf("migrate (demo data %t): %v", demo, err)
			}
			return take(t, db)
		}
		demo := migrated(true)
		if diff := cmp.Diff(demo, migrated(true)); diff != "" {
			t.Errorf("demo data differs between fresh databases (-first +second):\n%s", diff)
		}
		check(t, demo, migrated(false))
	})
}

// Rows reads every row of table into a T, in the order of the id column.
func Rows[T any](t testing.TB, db *gorm.DB, table string) []T {
	t.Helper()
	var rows []T
	if err := db.Table(table).Order("id").Find(&rows).Error; err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return rows
}

// SQLite returns a database on a new SQLite file in the test's temporary folder.
func SQLite(t testing.TB) *gorm.DB {
	t.Helper()
	cfg := database.Config{SQLitePath: filepath.Join(t.TempDir(), "test.db")}
	db, err := database.Open(context.Background(), cfg, discard())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}

// Postgres returns a database on a new, empty PostgreSQL database that is dropped when the test
// ends.
func Postgres(t testing.TB) *gorm.DB {
	t.Helper()
	dsn := PostgresDSN(t)
	db, err := database.Open(context.Background(), database.Config{DSN: dsn, MaxOpenConns: 20}, discard())
	if err != nil {
		t.Fatalf("open %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}

// PostgresDSN creates a new, empty PostgreSQL database, registers its removal with t.Cleanup,
// and returns its DSN (to hand to a service under test, say).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adb, err := database.Open(ctx, database.Config{DSN: admin, MaxOpenConns: 2}, discard())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI but unreachable at %s: %v", redact(admin), err)
		}
		t.Skipf("PostgreSQL unreachable at %s (set TEST_DATABASE_URL, or run `make db`): %v", redact(admin), err)
	}
	name := "test_" + randomHex(8)
	if err := adb.Exec("CREATE DATABASE " + name).Error; err != nil {
		_ = database.Close(adb)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		defer func() { _ = database.Close(adb) }()
		if err := adb.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Stairway applies migrations one at a time and, after each, rolls it back and applies it again
// (up, down, up), so that every Rollback is exercised against the schema its Migrate built.
// Then it rolls everything back and checks that only gormigrate's own table is left.
func Stairway(t *testing.T, db *gorm.DB, migrations []*gormigrate.Migration) {
	t.Helper()
	m := gormigrate.New(db, database.MigrateOptions, migrations)
	for _, mig := range migrations {
		if err := m.MigrateTo(mig.ID); err != nil {
			t.Fatalf("up %s: %v", mig.ID, err)
		}
		if err := m.RollbackLast(); err != nil {
			t.Fatalf("down %s: %v", mig.ID, err)
		}
		if err := m.MigrateTo(mig.ID); err != nil {
			t.Fatalf("up again %s: %v", mig.ID, err)
		}
	}
	for range migrations {
		if err := m.RollbackLast(); err != nil {
			t.Fatalf("roll back: %v", err)
		}
	}
	tables, err := db.Migrator().GetTables()
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	for _, table := range tables {
		if table != database.MigrateOptions.TableName && !strings.HasPrefix(table, "sqlite_") {
			t.Errorf("table %q left after rolling back every migration", table)
		}
	}
	if err := m.Migrate(); err != nil {
		t.Fatalf("up all: %v", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
