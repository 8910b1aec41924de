package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"
	"github.com/acme/shop/foundation/service"

	"github.com/acme/shop/customers-svc/internal/migrations"
)

// TestMigrateSubcommand: `customers-svc migrate` applies every migration, demo data included,
// and exits; run again, it finds nothing left to do.
func TestMigrateSubcommand(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"CUSTOMERS_SQLITE_PATH": filepath.Join(t.TempDir(), "customers.db")}
			if dialect == "postgres" {
				env["CUSTOMERS_DATABASE_URL"] = dbtest.PostgresDSN(t)
			}
			for range 2 {
				var logs bytes.Buffer
				if err := service.Command(t.Context(), spec, []string{"migrate"}, service.Process{Getenv: servetest.Env(env), Stdout: &logs}); err != nil {
					t.Fatalf("migrate: %v\n%s", err, logs.String())
				}
			}
			db, err := database.Open(context.Background(), database.Config{DSN: env["CUSTOMERS_DATABASE_URL"], SQLitePath: env["CUSTOMERS_SQLITE_PATH"]}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = database.Close(db) }()
			var applied, users int64
			if err := db.Table("migrations").Count(&applied).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Table("users").Count(&users).Error; err != nil {
				t.Fatal(err)
			}
			if want := int64(len(migrations.All(true))); applied != want || users != 4 {
				t.Errorf("after migrate twice: %d migrations applied and %d users, want %d and the 4 demo users", applied, users, want)
			}
		})
	}
}

// TestVersionSubcommand prints the service's name and build.
func TestVersionSubcommand(t *testing.T) {
	var out bytes.Buffer
	if err := service.Command(t.Context(), spec, []string{"version"}, service.Process{Getenv: servetest.Env(nil), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "customers ") {
		t.Errorf("version printed %q, want it to start with the service's name", out.String())
	}
}

// TestHealthcheckSubcommand: `customers-svc healthcheck` exits 0 while the service on that
// address is ready, and fails once it has stopped.
func TestHealthcheckSubcommand(t *testing.T) {
	running := servetest.Start(t, spec, map[string]string{"CUSTOMERS_SQLITE_PATH": filepath.Join(t.TempDir(), "customers.db")}, &bytes.Buffer{})
	running.WaitReady(t)
	probe := servetest.Env(map[string]string{"CUSTOMERS_HTTP_ADDR": strings.TrimPrefix(running.URL, "http://")})
	if err := service.Command(t.Context(), spec, []string{"healthcheck"}, service.Process{Getenv: probe, Stdout: &bytes.Buffer{}}); err != nil {
		t.Errorf("healthcheck of a ready service: %v", err)
	}
	if err := running.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := service.Command(t.Context(), spec, []string{"healthcheck"}, service.Process{Getenv: probe, Stdout: &bytes.Buffer{}}); err == nil {
		t.Error("healthcheck of a stopped service succeeded")
	}
}
