package main

import (
	"strings"
	"testing"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/events/eventstest"
	"github.com/acme/shop/foundation/service/servicetest"

	"github.com/acme/shop/customers-svc/internal/migrations"
)

// TestRun starts the whole service on each database, checks that both transports answer, and
// that cancelling the context shuts it down cleanly.
func TestRun(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := servicetest.StartOn(t, spec, dialect, nil)
		s.CheckServing(t, "customers.v1.UserService", "customers.v1.AuthService")
		s.CheckShutdown(t)
	})
}

// TestEmptyMetricsAddrServesNoMetrics: CUSTOMERS_METRICS_ADDR set to the empty string
// switches the metrics server off, instead of falling back to :9091.
func TestEmptyMetricsAddrServesNoMetrics(t *testing.T) {
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{"CUSTOMERS_METRICS_ADDR": ""})
	s.WaitReady(t)
	if s.Metrics != "" || strings.Contains(s.Logs.String(), "metrics server") {
		t.Errorf("metrics served at %q with CUSTOMERS_METRICS_ADDR empty:\n%s", s.Metrics, s.Logs.String())
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	servicetest.CheckConfigRejected(t, spec, map[string]string{"CUSTOMERS_DB_MAX_CONNS": "zero", "LOG_FORMAT": "xml"}, "CUSTOMERS_DB_MAX_CONNS", "LOG_FORMAT")
}

// TestProductionRefusesDemoUsers: production serves a database without demo data, and refuses
// to start on one that holds the demo users (their password is published), naming them.
func TestProductionRefusesDemoUsers(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		prod := map[string]string{"CUSTOMERS_NATS_URL": eventstest.Start(t).URL}
		for k, v := range production {
			prod[k] = v
		}
		servicetest.CheckDemoRowsRefused(t, spec, dialect, prod, migrations.DemoAdmin1ID, migrations.DemoNonAdmin4ID)
	})
}

// production are the settings that production needs, bar the NATS server's.
var production = map[string]string{"CUSTOMERS_JWT_SECRET": "a-jwt-secret-of-at-least-32-bytes-for-tests", "CUSTOMERS_ALLOW_PLAINTEXT_GRPC": "true"}

// TestProductionRequiresNATS: production refuses to serve without CUSTOMERS_NATS_URL, which
// would keep every deletion's event in the outbox, and migrates without it.
func TestProductionRequiresNATS(t *testing.T) {
	servicetest.CheckNATSRequired(t, spec, production)
}
