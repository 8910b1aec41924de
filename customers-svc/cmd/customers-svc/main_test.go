package main

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"
	"github.com/acme/shop/foundation/service"
)

// TestRun starts the whole service on each database, checks that both transports answer, and
// that cancelling the context shuts it down cleanly.
func TestRun(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{
				"CUSTOMERS_SQLITE_PATH": filepath.Join(t.TempDir(), "customers.db"),
				"SHUTDOWN_TIMEOUT":      "5s",
			}
			if dialect == "postgres" {
				env["CUSTOMERS_DATABASE_URL"] = dbtest.PostgresDSN(t)
			}
			var logs servetest.LogBuffer
			running := servetest.Start(t, spec, env, &logs)
			defer running.Cancel()
			base := running.URL
			servetest.WaitHealthy(t, base+"/healthz", 10*time.Second, running.Exited)

			for path, want := range map[string]int{
				"/readyz":                   http.StatusOK,
				"/api/v1/docs/":             http.StatusOK,
				"/api/v1/docs/openapi.json": http.StatusOK,
			} {
				res, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				_ = res.Body.Close()
				if res.StatusCode != want {
					t.Errorf("GET %s = %d, want %d", path, res.StatusCode, want)
				}
			}

			conn, err := grpc.NewClient(running.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			for _, svc := range []string{"", "customers.v1.UserService", "customers.v1.AuthService"} {
				res, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("health of %q = %v, %v; want SERVING", svc, res.GetStatus(), err)
				}
			}

			switch err := running.Stop(10 * time.Second); {
			case errors.Is(err, servetest.ErrStillRunning):
				t.Fatal("run did not return within 10s of cancel")
			case err != nil:
				t.Errorf("run returned %v after cancel, want nil", err)
			}
			if !strings.Contains(logs.String(), "shutting down") {
				t.Errorf("no shutdown line in the log:\n%s", logs.String())
			}
		})
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	env := map[string]string{"CUSTOMERS_DB_MAX_CONNS": "zero", "LOG_FORMAT": "xml"}
	err := service.Run(t.Context(), spec, service.Process{Getenv: servetest.Env(env), Stdout: &bytes.Buffer{}})
	if err == nil {
		t.Fatal("run with bad configuration succeeded")
	}
	for _, name := range []string{"CUSTOMERS_DB_MAX_CONNS", "LOG_FORMAT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
