package main

import (
	"bytes"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/service/servicetest"
)

// TestReplicasMigrateOnce starts three instances at the same moment on one fresh PostgreSQL
// database, as replicas of a deployment would: all become ready, and every migration, demo
// data included, was applied exactly once. The login throttle holds across them: five failed
// logins spread over the replicas, and the sixth is a 429 on any of them.
func TestReplicasMigrateOnce(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	const replicas = 3
	var running []*servicetest.Running
	for range replicas {
		env := map[string]string{
			"CUSTOMERS_SQLITE_PATH":  filepath.Join(t.TempDir(), "unused.db"),
			"CUSTOMERS_DATABASE_URL": dsn,
		}
		r := servicetest.Launch(spec, env, &bytes.Buffer{})
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

	wrong := map[string]any{"email": "nonadmin3@email.com", "password": "wrongPass123"}
	for i := range 5 {
		if res := servicetest.Do(t, http.MethodPost, running[i%replicas].URL+"/api/v1/auth/login", "", wrong); res.Code != http.StatusUnauthorized {
			t.Fatalf("failed login %d = %d %s, want 401", i+1, res.Code, res.Raw)
		}
	}
	for i, r := range running {
		if res := servicetest.Do(t, http.MethodPost, r.URL+"/api/v1/auth/login", "", wrong); res.Code != http.StatusTooManyRequests {
			t.Errorf("sixth failed login on replica %d = %d, want 429: the throttle must hold across replicas", i+1, res.Code)
		}
	}
}
