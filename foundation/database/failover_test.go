package database_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
)

// A write that reaches a standby answers 25006, as every write on a connection to the old
// primary does after a switchover; a READ ONLY transaction on the primary answers the same, and
// is how this test provokes it. The connection must leave the pool at once, and the error
// must be one the services answer with UNAVAILABLE.
func TestReadOnlyConnectionIsDiscarded(t *testing.T) {
	ctx := context.Background()
	var (
		mu      sync.Mutex
		reasons []string
	)
	onDiscard := database.OnDiscard(func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
	})
	db, err := database.Open(ctx, database.Config{DSN: dbtest.PostgresDSN(t), MaxOpenConns: 1}, discard(), onDiscard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	if err := db.Exec("CREATE TABLE notes (id int PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SET TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO notes VALUES (1)")
	_ = tx.Rollback()
	if !database.IsUnavailable(err) {
		t.Errorf("write in a read-only transaction: IsUnavailable(%v) = false, want true", err)
	}
	if err := conn.PingContext(ctx); !errors.Is(err, driver.ErrBadConn) {
		t.Errorf("ping on the connection that answered 25006: %v, want driver.ErrBadConn (closed)", err)
	}
	_ = conn.Close()
	mu.Lock()
	got := strings.Join(reasons, ",")
	mu.Unlock()
	if got != "read_only" {
		t.Errorf("discarded connections: %q, want %q", got, "read_only")
	}
	// The pool's one connection slot is free again, and a new connection writes.
	if err := db.Exec("INSERT INTO notes VALUES (2)").Error; err != nil {
		t.Errorf("write after the discarded connection: %v", err)
	}
}

// A multi-host DSN with target_session_attrs=read-write connects to the first host that takes
// writes, skipping those that do not answer: it is the DSN of a Patroni cluster.
func TestMultiHostDSN(t *testing.T) {
	u, err := url.Parse(dbtest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1.
	u.Host = "127.0.0.1:1," + u.Host
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	q.Set("connect_timeout", "5")
	u.RawQuery = q.Encode()
	db, err := database.Open(context.Background(), database.Config{DSN: u.String(), MaxOpenConns: 1}, discard())
	if err != nil {
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	var readOnly string
	if err := db.Raw("SHOW transaction_read_only").Scan(&readOnly).Error; err != nil || readOnly != "off" {
		t.Errorf("transaction_read_only = %q (%v), want off", readOnly, err)
	}
}
