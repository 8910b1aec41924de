package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	sqlite "github.com/glebarez/go-sqlite"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/telemetry/telemetrytest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// logoutBegan receives when the slow logout of TestClientHangsUpDuringWrite has begun to
// delete its session: its trigger calls logout_began().
var logoutBegan = make(chan struct{}, 1)

// TestMain registers logout_began with the SQLite driver, which adds the functions registered
// with it to the connections it opens after: before any test starts a service.
func TestMain(m *testing.M) {
	sqlite.MustRegisterScalarFunction("logout_began", 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		select {
		case logoutBegan <- struct{}{}:
		default:
		}
		return nil, nil
	})
	os.Exit(m.Run())
}

// TestClientHangsUpDuringWrite: a client that hangs up while its write runs on SQLite (what
// make run uses) ends its call CANCELED, logged at INFO and counted as Canceled, not as a
// server error. Cancelling a running SQLite statement interrupts it, and the driver answers
// "interrupted (9)", not a context error: the call's own context says whose the error is.
func TestClientHangsUpDuringWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "customers.db")
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{
		"CUSTOMERS_JWT_SECRET": testSecret, "CUSTOMERS_SQLITE_PATH": path,
	})
	s.WaitReady(t)
	users, auth := customersv1.NewUserServiceClient(s.Conn), customersv1.NewAuthServiceClient(s.Conn)
	u, err := users.CreateUser(t.Context(), &customersv1.CreateUserRequest{Email: "hangup@example.com", Password: demoPassword})
	if err != nil {
		t.Fatal(err)
	}
	login, err := auth.Login(t.Context(), &customersv1.LoginRequest{Email: "hangup@example.com", Password: demoPassword})
	if err != nil {
		t.Fatal(err)
	}

	// A second connection to the service's database makes deleting this user's sessions (the
	// write of a logout) run for a while (3·10⁷ rows counted: about a second, several under the
	// race detector), and has it say when it begins.
	db, err := database.Open(t.Context(), database.Config{SQLitePath: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = database.Close(db) }()
	for _, stmt := range []string{
		"CREATE TABLE slow (x INTEGER)",
		"INSERT INTO slow WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c",
		"CREATE TRIGGER slow_logout BEFORE DELETE ON sessions WHEN OLD.user_id = '" + u.GetUser().GetId() + "' BEGIN SELECT logout_began(); SELECT count(*) FROM slow a, slow b, (SELECT x FROM slow LIMIT 30) c; END",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	before := telemetrytest.Scrape(t, s.Metrics)
	ctx, cancel := context.WithCancel(servicetest.WithAuthorization(servicetest.Bearer(login.GetAccessToken())))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := auth.Logout(ctx, &customersv1.LogoutRequest{})
		done <- err
	}()
	// Cancel once the DELETE runs: a cancellation between the logout's BEGIN and its DELETE
	// would go unseen by SQLite (an interrupt with no statement running is forgotten) and the
	// statement would run to its end: the call would still end Canceled, but without the
	// interruption this test is about.
	select {
	case <-logoutBegan:
	case err := <-done:
		t.Fatalf("logout returned %v before its write began", err)
	}
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("logout returned %v, want the client's cancellation", err)
	}

	finished := regexp.MustCompile(`level=(\S+) msg="finished call" .*grpc.method=/customers.v1.AuthService/Logout grpc.code=(\S+)`)
	var line []string
	poll.Until(t, func() error {
		if line = finished.FindStringSubmatch(s.Logs.String()); line == nil {
			return errors.New("no line about the logout in the log:\n" + s.Logs.String())
		}
		return nil
	})
	if level, code := line[1], line[2]; level != "INFO" || code != "Canceled" {
		t.Errorf("the logout ended %s at %s, want Canceled at INFO", code, level)
	}
	if regexp.MustCompile(`level=ERROR`).MatchString(s.Logs.String()) {
		t.Errorf("a client hanging up logged an error:\n%s", s.Logs.String())
	}
	canceled := map[string]string{"grpc_method": "Logout", "grpc_code": "Canceled"}
	after := telemetrytest.Scrape(t, s.Metrics)
	if b, a := telemetrytest.Value(before, "grpc_server_handled_total", canceled), telemetrytest.Value(after, "grpc_server_handled_total", canceled); a != b+1 {
		t.Errorf("grpc_server_handled_total%v went from %v to %v, want it to rise by 1", canceled, b, a)
	}
	if n := telemetrytest.Value(after, "grpc_server_handled_total", map[string]string{"grpc_method": "Logout", "grpc_code": "Internal"}); n != 0 {
		t.Errorf("%v logouts counted as Internal", n)
	}
}
