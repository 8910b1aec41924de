package main

import (
	"testing"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/serve/servetest"
)

// TestRun starts the whole service on each database, checks that both transports answer, and
// that cancelling the context shuts it down cleanly.
func TestRun(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := servetest.StartOn(t, spec, dialect, nil)
		s.CheckServing(t, "customers.v1.UserService", "customers.v1.AuthService")
		s.CheckShutdown(t)
	})
}

func TestRunRejectsBadConfig(t *testing.T) {
	servetest.CheckConfigRejected(t, spec, map[string]string{"CUSTOMERS_DB_MAX_CONNS": "zero", "LOG_FORMAT": "xml"}, "CUSTOMERS_DB_MAX_CONNS", "LOG_FORMAT")
}
