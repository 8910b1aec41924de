package main

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"

	"github.com/acme/shop/customers-svc/internal/migrations"
)

// TestReplicasMigrateOnce starts three instances at the same moment on one fresh PostgreSQL
// database, as replicas of a deployment would: all become ready, and every migration, demo
// data included, was applied exactly once.
func TestReplicasMigrateOnce(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	const replicas = 3
	var running []*servetest.Running
	for range replicas {
		env := map[string]string{
			"CUSTOMERS_SQLITE_PATH":  filepath.Join(t.TempDir(), "unused.db"),
			"CUSTOMERS_DATABASE_URL": dsn,
		}
		r := servetest.Launch(spec, env, &bytes.Buffer{})
		running = append(running, r)
		t.Cleanup(func() {
			if err := r.Stop(10 * time.Second); err != nil {
				t.Errorf("replica: %v", err)
			}
		})
	}
	for _, r := range running {
		r.WaitListening(t)
		r.WaitReady(t)
	}

	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sqlDB.Close() }()
	var applied, users int64
	if err := db.Table("migrations").Count(&applied).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Table("users").Count(&users).Error; err != nil {
		t.Fatal(err)
	}
	if want := int64(len(migrations.All(true))); applied != want || users != 4 {
		t.Errorf("applied migrations %d, users %d; want %d and the 4 demo users once", applied, users, want)
	}
}
