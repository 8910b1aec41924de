package servicetest

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/service"
)

// Service is a service that StartOn started for a test: the running service, its log, and a
// plaintext gRPC client connection to it.
type Service struct {
	*Running
	Logs *LogBuffer
	Conn *grpc.ClientConn
}

// StartOn starts spec as Start does, on a fresh database of dialect (one of dbtest.Dialects:
// a new PostgreSQL database unless env names one, or a SQLite file in the test's temporary
// folder), with env over the defaults of tests (debug logs, a 5 s shutdown timeout). It waits
// until /healthz answers and dials the gRPC port. When the test ends it stops the service and
// fails the test unless run returned nil within 10 s. The service need not be ready: see
// WaitReady.
func StartOn[C any](t testing.TB, spec service.Spec[C], dialect string, env map[string]string) *Service {
	t.Helper()
	return StartTracedOn(t, spec, dialect, env, nil)
}

// StartTracedOn is StartOn with every span of the service handed to spans
// (tracetest.NewSpanRecorder records them in memory).
func StartTracedOn[C any](t testing.TB, spec service.Spec[C], dialect string, env map[string]string, spans sdktrace.SpanProcessor) *Service {
	t.Helper()
	prefix := strings.ToUpper(spec.Name) + "_"
	all := map[string]string{
		prefix + "SQLITE_PATH": filepath.Join(t.TempDir(), spec.Name+".db"),
		"SHUTDOWN_TIMEOUT":     "5s",
		"LOG_LEVEL":            "debug",
	}
	if dialect == "postgres" && env[prefix+"DATABASE_URL"] == "" {
		all[prefix+"DATABASE_URL"] = dbtest.PostgresDSN(t)
	}
	for k, v := range env {
		all[k] = v
	}
	s := &Service{Logs: &LogBuffer{}}
	s.Running = LaunchTraced(spec, all, s.Logs, spans)
	s.WaitListening(t)
	t.Cleanup(func() {
		if err := s.Stop(10 * time.Second); err != nil {
			t.Errorf("%s: run: %v", spec.Name, err)
		}
	})
	WaitHealthy(t, s.URL+"/healthz", s.Exited)
	conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.Conn = conn
	return s
}

// CheckServing checks what every service answers once ready: /healthz and /readyz, Swagger
// UI and its OpenAPI document over REST, and gRPC health SERVING for the server as a whole and
// for each of services ("cart.v1.CartService").
func (s *Service) CheckServing(t testing.TB, services ...string) {
	t.Helper()
	s.WaitReady(t)
	for _, path := range []string{"/healthz", "/readyz", "/api/v1/docs/", "/api/v1/docs/openapi.json"} {
		if res := Do(t, http.MethodGet, s.URL+path, "", nil); res.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, res.Code)
		}
	}
	health := healthpb.NewHealthClient(s.Conn)
	for _, svc := range append([]string{""}, services...) {
		res, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", svc, res.GetStatus(), err)
		}
	}
}

// CheckShutdown cancels run and checks that it returns nil within 10 s, having logged that it
// was shutting down.
func (s *Service) CheckShutdown(t testing.TB) {
	t.Helper()
	s.Cancel()
	s.CheckReturns(t, 10*time.Second)
	if !strings.Contains(s.Logs.String(), "shutting down") {
		t.Errorf("no shutdown line in the log:\n%s", s.Logs.String())
	}
}

// Load reads spec's configuration from env as the service does at start-up, in development
// unless env sets APP_ENV.
func Load[C any](spec service.Spec[C], env map[string]string) (C, error) {
	_, c, err := service.Load(spec, func(k string) (string, bool) {
		if v, ok := env[k]; ok || k != "APP_ENV" {
			return v, ok
		}
		return "development", true
	})
	return c, err
}

// CheckConfigRejected runs spec with the variables of env and checks that it refuses to start,
// naming each of vars in its error.
func CheckConfigRejected[C any](t testing.TB, spec service.Spec[C], env map[string]string, vars ...string) {
	t.Helper()
	err := service.Run(t.Context(), spec, service.Process{LookupEnv: envconf.Map(env), Stdout: io.Discard})
	if err == nil {
		t.Fatal("run with bad configuration succeeded")
	}
	for _, name := range vars {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// CheckDemoRowsRefused checks that production refuses a database that holds demo data and
// serves one that does not: on a fresh database of dialect, production with prod (its secrets
// and transport settings) starts; then development adds the demo rows (`migrate`), and
// production on the same database refuses to start with service.ErrDemoRows, naming each of
// ids.
func CheckDemoRowsRefused[C any](t *testing.T, spec service.Spec[C], dialect string, prod map[string]string, ids ...string) {
	t.Helper()
	prefix := strings.ToUpper(spec.Name) + "_"
	db := map[string]string{prefix + "SQLITE_PATH": filepath.Join(t.TempDir(), spec.Name+".db")}
	if dialect == "postgres" {
		db[prefix+"DATABASE_URL"] = dbtest.PostgresDSN(t)
	}
	prod = merged(db, prod, map[string]string{"APP_ENV": "production"})

	s := StartOn(t, spec, dialect, prod)
	s.WaitReady(t)
	if err := s.Stop(10 * time.Second); err != nil {
		t.Fatalf("production on a database without demo data: %v", err)
	}

	dev := service.Process{LookupEnv: envconf.Map(merged(db, map[string]string{"APP_ENV": "development"})), Stdout: io.Discard}
	if err := service.Command(t.Context(), spec, []string{"migrate"}, dev); err != nil {
		t.Fatalf("development migrate: %v", err)
	}
	r := Launch(spec, prod, io.Discard)
	err := r.Wait(30 * time.Second)
	if !errors.Is(err, service.ErrDemoRows) {
		r.Cancel()
		t.Fatalf("production on a database with demo data: %v, want %v", err, service.ErrDemoRows)
	}
	for _, id := range ids {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name the demo row %s", err, id)
		}
	}
}

// CheckNATSRequired checks that production serves only with <SVC>_NATS_URL, and that the
// subcommands that need no NATS run without it: on a fresh SQLite database, production with
// prod (its secrets and transport settings, and no NATS URL) refuses to serve, naming the
// variable, and migrates.
func CheckNATSRequired[C any](t *testing.T, spec service.Spec[C], prod map[string]string) {
	t.Helper()
	prefix := strings.ToUpper(spec.Name) + "_"
	prod = merged(prod, map[string]string{
		"APP_ENV": "production", prefix + "NATS_URL": "", prefix + "DATABASE_URL": "",
		prefix + "SQLITE_PATH": filepath.Join(t.TempDir(), spec.Name+".db"),
	})
	r := Launch(spec, prod, io.Discard)
	err := r.Wait(30 * time.Second)
	if errors.Is(err, ErrStillRunning) {
		r.Cancel()
		t.Fatalf("production without %sNATS_URL serves", prefix)
	}
	if err == nil || !strings.Contains(err.Error(), prefix+"NATS_URL:") {
		t.Errorf("production without %sNATS_URL: %v, want an error naming it", prefix, err)
	}
	if err := service.Command(t.Context(), spec, []string{"migrate"}, service.Process{LookupEnv: envconf.Map(prod), Stdout: io.Discard}); err != nil {
		t.Errorf("production migrate without %sNATS_URL: %v", prefix, err)
	}
}

func merged(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
