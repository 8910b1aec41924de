package dbtest_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
)

func TestClusterRestarts(t *testing.T) {
	c := dbtest.NewCluster(t)
	db, err := database.Open(context.Background(), database.Config{DSN: c.DSN()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = database.Close(db) }()
	if err := db.Exec("CREATE TABLE kept (v int)").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO kept VALUES (42)").Error; err != nil {
		t.Fatal(err)
	}
	c.Stop()
	if err := database.Ping(context.Background(), db); !database.IsUnavailable(err) {
		t.Errorf("ping with the server down: %v, want an unavailable error", err)
	}
	c.Start()
	var v int
	if err := db.Raw("SELECT v FROM kept").Scan(&v).Error; err != nil || v != 42 {
		t.Errorf("after restart: %d, %v; want 42", v, err)
	}
}
