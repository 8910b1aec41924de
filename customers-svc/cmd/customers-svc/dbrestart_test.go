package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/service/servicetest"
)

// TestDatabaseRestart stops customers' PostgreSQL under it: calls that need the database get
// 503 (not 500, not a hang) and /readyz says not ready; when the database is back the service
// recovers without a restart, and nothing it acknowledged is lost.
func TestDatabaseRestart(t *testing.T) {
	cluster := dbtest.NewCluster(t)
	h := start(t, "postgres", map[string]string{"CUSTOMERS_DATABASE_URL": cluster.DSN()})

	email := uniqueEmail()
	h.register(email, "keptPass123") // acknowledged before the outage
	tok := h.login(email, "keptPass123")

	cluster.Stop()
	for name, call := range map[string]func() servicetest.Response{
		"readyz": func() servicetest.Response { return h.do(http.MethodGet, "/readyz", "", nil) },
		"me":     func() servicetest.Response { return h.do(http.MethodGet, "/api/v1/users/me", tok, nil) },
		"register": func() servicetest.Response {
			return h.do(http.MethodPost, "/api/v1/users", "", map[string]any{"email": uniqueEmail(), "password": "lostPass123"})
		},
		"login": func() servicetest.Response {
			return h.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": email, "password": "keptPass123"})
		},
	} {
		began := time.Now()
		res := call()
		if res.Code != http.StatusServiceUnavailable {
			t.Errorf("%s with the database down = %d %s, want 503", name, res.Code, res.Raw)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("%s took %v with the database down", name, took)
		}
	}
	if res := h.do(http.MethodGet, "/healthz", "", nil); res.Code != http.StatusOK {
		t.Errorf("healthz with the database down = %d, want 200 (the process is alive)", res.Code)
	}

	cluster.Start()
	// Ready again without a restart.
	servicetest.WaitHealthy(t, h.rest+"/readyz", nil)
	if res := h.do(http.MethodGet, "/api/v1/users/me", tok, nil); res.Code != http.StatusOK || res.JSON["email"] != email {
		t.Errorf("after the restart: %d %s; want the user registered before it, token still valid", res.Code, res.Raw)
	}
}
