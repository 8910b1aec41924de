package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"
)

// TestMigrateSubcommand runs the Kubernetes sequence: a replica that does not migrate on start
// refuses a database with migrations pending; `customers-svc migrate` applies every migration,
// demo data included, and exits, and run again finds nothing left to do; then the replica
// serves.
func TestMigrateSubcommand(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		env := map[string]string{
			"CUSTOMERS_SQLITE_PATH": filepath.Join(t.TempDir(), "customers.db"), "CUSTOMERS_MIGRATE_ON_START": "false",
			"CUSTOMERS_HTTP_ADDR": "127.0.0.1:0", "CUSTOMERS_GRPC_ADDR": "127.0.0.1:0", "APP_ENV": "development",
		}
		if dialect == "postgres" {
			env["CUSTOMERS_DATABASE_URL"] = dbtest.PostgresDSN(t)
		}
		err := service.Command(t.Context(), spec, nil, service.Process{LookupEnv: envconf.Map(env), Stdout: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "not applied yet") || !strings.Contains(err.Error(), "CUSTOMERS_MIGRATE_ON_START") {
			t.Errorf("serve without migrating on an empty database = %v, want a refusal naming CUSTOMERS_MIGRATE_ON_START", err)
		}
		for range 2 {
			var logs bytes.Buffer
			if err := service.Command(t.Context(), spec, []string{"migrate"}, service.Process{LookupEnv: envconf.Map(env), Stdout: &logs}); err != nil {
				t.Fatalf("migrate: %v\n%s", err, logs.String())
			}
		}
		checkMigratedOnce(t, database.Config{DSN: env["CUSTOMERS_DATABASE_URL"], SQLitePath: env["CUSTOMERS_SQLITE_PATH"]}, "after migrate twice")
		servicetest.StartOn(t, spec, dialect, env).CheckServing(t, "customers.v1.AuthService")
	})
}

// TestVersionSubcommand prints the service's name and build.
func TestVersionSubcommand(t *testing.T) {
	var out bytes.Buffer
	if err := service.Command(t.Context(), spec, []string{"version"}, service.Process{LookupEnv: envconf.Map(nil), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "customers ") {
		t.Errorf("version printed %q, want it to start with the service's name", out.String())
	}
}

// TestHealthcheckSubcommand: `customers-svc healthcheck` exits 0 while the service on that
// address is ready, and fails once it has stopped.
func TestHealthcheckSubcommand(t *testing.T) {
	running := servicetest.Start(t, spec, map[string]string{"CUSTOMERS_SQLITE_PATH": filepath.Join(t.TempDir(), "customers.db")}, &bytes.Buffer{})
	running.WaitReady(t)
	probe := envconf.Map(map[string]string{"APP_ENV": "development", "CUSTOMERS_HTTP_ADDR": strings.TrimPrefix(running.URL, "http://")})
	if err := service.Command(t.Context(), spec, []string{"healthcheck"}, service.Process{LookupEnv: probe, Stdout: &bytes.Buffer{}}); err != nil {
		t.Errorf("healthcheck of a ready service: %v", err)
	}
	if err := running.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := service.Command(t.Context(), spec, []string{"healthcheck"}, service.Process{LookupEnv: probe, Stdout: &bytes.Buffer{}}); err == nil {
		t.Error("healthcheck of a stopped service succeeded")
	}
}
