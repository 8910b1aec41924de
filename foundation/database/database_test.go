package database_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

// sample is a two-step schema used to exercise the migration plumbing itself.
func sample() []*gormigrate.Migration {
	type widget struct {
		ID   int64 `gorm:"primaryKey"`
		Name string
	}
	type gadget struct {
		ID int64 `gorm:"primaryKey"`
	}
	return []*gormigrate.Migration{
		{
			ID: "202601010000_widgets",
			Migrate: func(tx *gorm.DB) error {
				if err := tx.Migrator().CreateTable(&widget{}); err != nil {
					return err
				}
				return tx.Create(&widget{ID: 1, Name: "seed"}).Error
			},
			Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&widget{}) },
		},
		{
			ID:       "202601020000_gadgets",
			Migrate:  func(tx *gorm.DB) error { return tx.Migrator().CreateTable(&gadget{}) },
			Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable(&gadget{}) },
		},
	}
}

func TestStairway(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		dbtest.Stairway(t, dbtest.Open(t, dialect), sample())
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		db := dbtest.Open(t, dialect)
		for range 2 {
			if err := database.Migrate(context.Background(), db, "test", sample()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
		}
		var n int64
		if err := db.Table("widgets").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("widgets = %d after migrating twice, want 1", n)
		}
	})
}

// TestMigrateConcurrentReplicas starts several migrators at once on one PostgreSQL database, as
// replicas starting together would: the advisory lock makes exactly one of them apply each
// migration, and none of them fail.
func TestMigrateConcurrentReplicas(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	const replicas = 6
	var wg sync.WaitGroup
	errs := make(chan error, replicas)
	for range replicas {
		db, err := database.Open(context.Background(), database.Config{DSN: dsn, MaxOpenConns: 2}, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = database.Close(db) })
		wg.Go(func() { errs <- database.Migrate(context.Background(), db, "test", sample()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("replica failed to migrate: %v", err)
		}
	}
	check, err := database.Open(context.Background(), database.Config{DSN: dsn}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = database.Close(check) }()
	var widgets, applied int64
	if err := check.Table("widgets").Count(&widgets).Error; err != nil {
		t.Fatal(err)
	}
	if err := check.Table(database.MigrateOptions.TableName).Count(&applied).Error; err != nil {
		t.Fatal(err)
	}
	if widgets != 1 || applied != 2 {
		t.Errorf("widgets = %d, applied migrations = %d; want 1 and 2", widgets, applied)
	}
}

// TestPending lists what Migrate has not applied yet, in order, on an empty database too.
func TestPending(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		db := dbtest.Open(t, dialect)
		all := sample()
		check := func(want ...string) {
			t.Helper()
			got, err := database.Pending(context.Background(), db, all)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("Pending = %v, want %v", got, want)
			}
		}
		check(all[0].ID, all[1].ID)
		if err := database.Migrate(context.Background(), db, "test", all[:1]); err != nil {
			t.Fatal(err)
		}
		check(all[1].ID)
		if err := database.Migrate(context.Background(), db, "test", all); err != nil {
			t.Fatal(err)
		}
		check()
	})
}

// TestMigrateIsAtomicOnPostgres: when one migration of a batch fails, none of the batch is
// applied, so a retried migrate starts from a known schema.
func TestMigrateIsAtomicOnPostgres(t *testing.T) {
	db := dbtest.Postgres(t)
	broken := append(sample(), &gormigrate.Migration{
		ID:      "202601030000_broken",
		Migrate: func(tx *gorm.DB) error { return tx.Exec("SELECT * FROM no_such_table").Error },
	})
	if err := database.Migrate(context.Background(), db, "test", broken); err == nil {
		t.Fatal("Migrate with a failing migration succeeded")
	}
	pending, err := database.Pending(context.Background(), db, broken)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != len(broken) || db.Migrator().HasTable("widgets") {
		t.Errorf("after a failed batch, pending = %v and widgets exists = %t; want all pending, no table", pending, db.Migrator().HasTable("widgets"))
	}
}

// TestChanged: a write that changed no row is the caller's not-found error; a failed write is
// its own error.
func TestChanged(t *testing.T) {
	db := dbtest.SQLite(t)
	if err := database.Migrate(context.Background(), db, "test", sample()); err != nil {
		t.Fatal(err)
	}
	errGone := errors.New("gone")
	if err := database.Changed(db.Table("widgets").Where("id = ?", 1).Update("name", "renamed"), errGone); err != nil {
		t.Errorf("update of an existing row: %v", err)
	}
	if err := database.Changed(db.Table("widgets").Where("id = ?", 2).Update("name", "renamed"), errGone); !errors.Is(err, errGone) {
		t.Errorf("update of a missing row = %v, want %v", err, errGone)
	}
	if err := database.Changed(db.Table("no_such_table").Where("id = ?", 1).Update("name", "x"), errGone); err == nil || errors.Is(err, errGone) {
		t.Errorf("failed update = %v, want the database's error", err)
	}
}

func TestOpenRejectsMissingConfig(t *testing.T) {
	_, err := database.Open(context.Background(), database.Config{}, discard())
	if err == nil {
		t.Fatal("Open with no DSN and no SQLite path succeeded, want an error")
	}
}

func TestSQLiteTranslatesDuplicateKey(t *testing.T) {
	db := dbtest.SQLite(t)
	if err := database.Migrate(context.Background(), db, "test", sample()); err != nil {
		t.Fatal(err)
	}
	err := db.Exec("INSERT INTO widgets (id, name) VALUES (1, 'again')").Error
	if err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	if err := db.Table("widgets").Create(map[string]any{"id": 1, "name": "again"}).Error; !errors.Is(err, gorm.ErrDuplicatedKey) {
		t.Errorf("duplicate insert error = %v, want gorm.ErrDuplicatedKey", err)
	}
}

// TestSQLLog checks what reaches the log: failed statements, without their parameters, and
// neither successful statements nor lookups that find nothing.
func TestSQLLog(t *testing.T) {
	var buf bytes.Buffer
	cfg := database.Config{SQLitePath: filepath.Join(t.TempDir(), "log.db")}
	db, err := database.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	const secret = "s3cret-parameter"

	if err := db.Exec("SELECT ?", secret).Error; err != nil {
		t.Fatal(err)
	}
	var row struct{ Name string }
	if err := db.Table("sqlite_master").Where("name = ?", secret).Take(&row).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
		t.Fatalf("lookup of a missing row: %v, want gorm.ErrRecordNotFound", err)
	}
	if buf.Len() != 0 {
		t.Errorf("successful statements were logged:\n%s", buf.String())
	}

	if err := db.Exec("INSERT INTO missing_table VALUES (?)", secret).Error; err == nil {
		t.Fatal("insert into a missing table succeeded")
	}
	if log := buf.String(); !strings.Contains(log, "missing_table") || strings.Contains(log, secret) {
		t.Errorf("failed statement's log = %q, want its SQL without its parameter", log)
	}
}

// TestConnectionErrorLog checks that a database that cannot be reached reads clearly in both log
// formats: the formatted error, with the address, not an encoding failure of gorm's arguments.
func TestConnectionErrorLog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	for name, handler := range map[string]func(io.Writer) slog.Handler{
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := database.Config{DSN: "postgres://shop:pw@" + addr + "/shop?connect_timeout=5"}
			if _, err := database.Open(context.Background(), cfg, slog.New(handler(&buf))); err == nil {
				t.Fatal("Open of a closed port succeeded")
			}
			log := buf.String()
			if !strings.Contains(log, "connection refused") || !strings.Contains(log, addr) || strings.Contains(log, "!ERROR") || strings.Contains(log, "%v") {
				t.Errorf("log of a failed connection = %s, want the formatted error naming %s", log, addr)
			}
			if strings.Contains(log, "pw@") || strings.Contains(log, ":pw") {
				t.Errorf("log of a failed connection shows the password: %s", log)
			}
		})
	}
}

// TestWithPassword puts passwords of any character into a URL that pgx reads back as written.
func TestWithPassword(t *testing.T) {
	for _, pw := range []string{"simple", "a/b+c=d", "@:?#%", "p@ss:w/rd?x#y%z", "quote'back\\slash", "sp ace", "ünï"} {
		dsn, err := database.WithPassword("postgres://app:old@db1:5432,db2:5433/shop?sslmode=disable&target_session_attrs=read-write", pw)
		if err != nil {
			t.Fatalf("WithPassword(%q): %v", pw, err)
		}
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("pgx cannot parse %q: %v", dsn, err)
		}
		if cfg.Password != pw || cfg.User != "app" || cfg.Database != "shop" || cfg.Host != "db1" || len(cfg.Fallbacks) != 1 || cfg.Fallbacks[0].Host != "db2" {
			t.Errorf("WithPassword(%q) = %q, which pgx reads as user %q password %q database %q host %q", pw, dsn, cfg.User, cfg.Password, cfg.Database, cfg.Host)
		}
	}
	for _, dsn := range []string{"host=db user=app", "postgres://db/shop", "mysql://app@db/shop"} {
		if _, err := database.WithPassword(dsn, "pw"); err == nil {
			t.Errorf("WithPassword(%q) succeeded, want an error (no URL, or no user)", dsn)
		}
	}
}

// TestPasswordOfAnyCharacter connects, on a server that asks for passwords, with passwords
// holding every character a URL would need escaped, and with random base64 ones such as
// `openssl rand -base64 24` makes; a wrong password is refused.
func TestPasswordOfAnyCharacter(t *testing.T) {
	cluster := dbtest.NewCluster(t)
	cluster.RequirePasswords()
	admin, err := database.Open(context.Background(), database.Config{DSN: cluster.DSN()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(admin) })
	if err := admin.Exec("CREATE ROLE app LOGIN").Error; err != nil {
		t.Fatal(err)
	}
	passwords := []string{"/+=@:?#%", "a/b", "x@y:z", "%41%", "?#", "quote'and\"double", `back\slash`}
	for range 20 {
		b := make([]byte, 24)
		_, _ = crand.Read(b)
		passwords = append(passwords, base64.StdEncoding.EncodeToString(b))
	}
	dsn := strings.Replace(cluster.DSN(), "postgres://postgres@", "postgres://app@", 1)
	for _, pw := range passwords {
		var stmt string
		if err := admin.Raw("SELECT format('ALTER ROLE app PASSWORD %L', ?::text)", pw).Scan(&stmt).Error; err != nil {
			t.Fatal(err)
		}
		if err := admin.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
		db, err := database.Open(context.Background(), database.Config{DSN: dsn, Password: pw}, discard())
		if err != nil {
			t.Errorf("password %q: %v", pw, err)
			continue
		}
		_ = database.Close(db)
		if db, err := database.Open(context.Background(), database.Config{DSN: dsn, Password: pw + "x"}, discard()); err == nil {
			_ = database.Close(db)
			t.Errorf("a wrong password (%q) connected", pw+"x")
		}
	}
}

// TestDatabaseTLSWithPrivateCA connects with sslmode=verify-full to a server whose certificate
// comes from a private CA (the one `make certs` writes), trusting that CA by sslrootcert, as a
// managed database's own CA is mounted in production; with the system's CAs or another CA, the
// connection is refused.
func TestDatabaseTLSWithPrivateCA(t *testing.T) {
	pki, other := t.TempDir(), t.TempDir()
	for _, dir := range []string{pki, other} {
		if err := devcerts.Generate(dir, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(pki, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cluster := dbtest.NewCluster(t)
	port := cluster.EnableTLS(read(devcerts.PostgresCert), read(devcerts.PostgresKey))
	dsn := func(host, params string) string {
		return fmt.Sprintf("postgres://postgres@%s:%d/postgres?connect_timeout=5&%s", host, port, params)
	}
	ca, otherCA := url.QueryEscape(filepath.Join(pki, devcerts.CACert)), url.QueryEscape(filepath.Join(other, devcerts.CACert))
	for _, tt := range []struct {
		name, dsn string
		ok        bool
	}{
		{"verify-full with the private CA", dsn("localhost", "sslmode=verify-full&sslrootcert="+ca), true},
		{"verify-full at the address the certificate names", dsn("127.0.0.1", "sslmode=verify-full&sslrootcert="+ca), true},
		{"verify-full with the system's CAs", dsn("localhost", "sslmode=verify-full"), false},
		{"verify-full with another CA", dsn("localhost", "sslmode=verify-full&sslrootcert="+otherCA), false},
		{"verify-ca with another CA", dsn("localhost", "sslmode=verify-ca&sslrootcert="+otherCA), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := database.Open(context.Background(), database.Config{DSN: tt.dsn}, discard())
			if err == nil {
				var ssl bool
				err = db.Raw("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl).Error
				if err == nil && !ssl {
					err = errors.New("connected without TLS")
				}
				_ = database.Close(db)
			}
			if (err == nil) != tt.ok {
				t.Errorf("Open = %v, want success %t", err, tt.ok)
			}
		})
	}
}
