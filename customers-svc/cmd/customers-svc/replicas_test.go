package main

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"
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

	checkMigratedOnce(t, database.Config{DSN: dsn}, "after 3 replicas started")
}
