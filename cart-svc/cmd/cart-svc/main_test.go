package main

import (
	"bytes"
	"errors"
	"net/http"
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

// TestRun starts the whole service on each database next to a real customers, checks that
// both transports answer and that cancelling the context shuts it down cleanly.
func TestRun(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			c := startCustomers(t, "sqlite", nil)
			env := map[string]string{
				"CART_SQLITE_PATH":    t.TempDir() + "/cart.db",
				"CART_CUSTOMERS_ADDR": c.grpc,
				"SHUTDOWN_TIMEOUT":    "5s",
			}
			if dialect == "postgres" {
				env["CART_DATABASE_URL"] = dbtest.PostgresDSN(t)
			}
			var logs servetest.LogBuffer
			running := servetest.Start(t, spec, env, &logs)
			defer running.Cancel()
			base := running.URL
			servetest.WaitHealthy(t, base+"/readyz", 10*time.Second, running.Exited)
			for _, path := range []string{"/healthz", "/api/v1/docs/", "/api/v1/docs/openapi.json", "/api/v1/products"} {
				if res := doJSON(t, http.MethodGet, base+path, "", nil); res.Code != http.StatusOK {
					t.Errorf("GET %s = %d, want 200", path, res.Code)
				}
			}
			conn, err := grpc.NewClient(running.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			for _, svc := range []string{"", "cart.v1.ProductService", "cart.v1.CartService"} {
				res, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("health of %q = %v, %v; want SERVING", svc, res.GetStatus(), err)
				}
			}
			// Readiness follows customers.
			c.stop()
			if res := doJSON(t, http.MethodGet, base+"/readyz", "", nil); res.Code != http.StatusServiceUnavailable {
				t.Errorf("readyz with customers down = %d, want 503", res.Code)
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
	env := map[string]string{"CART_MAX_QUANTITY": "0", "CART_CUSTOMERS_TIMEOUT": "soon"}
	err := service.Run(t.Context(), spec, service.Process{Getenv: servetest.Env(env), Stdout: &bytes.Buffer{}})
	if err == nil {
		t.Fatal("run with bad configuration succeeded")
	}
	for _, name := range []string{"CART_MAX_QUANTITY", "CART_CUSTOMERS_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
