package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

// TestPgBouncerVerifiesItsServer runs Debian's pgbouncer with the shipped pgbouncer.ini
// (components/pgbouncer; only the paths and addresses of the pod are replaced by the test's
// own) in front of a throwaway PostgreSQL whose certificate comes from a private CA. With that
// CA in the bundle server_tls_ca_file names, a query through PgBouncer reaches the server over
// TLS; with another private CA's bundle, with no bundle, or with a certificate of the right CA
// for another host name, PgBouncer refuses the server and the query fails. Dev's databases.ini, included
// last, turns TLS off for its PostgreSQL without TLS, and then no CA bundle is needed.
func TestPgBouncerVerifiesItsServer(t *testing.T) {
	bin := pgbouncerBinary(t)
	shipped, err := os.ReadFile(filepath.Join("components", "pgbouncer", "pgbouncer.ini"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := iniSetting(string(shipped), "pgbouncer", "server_tls_sslmode"); mode != "verify-full" {
		t.Errorf("pgbouncer.ini: server_tls_sslmode = %q, want verify-full", mode)
	}
	// Dev's settings: the lines of its databases.ini before the [databases] header, which
	// continue pgbouncer.ini's [pgbouncer] section.
	devOverride := iniSection(t, filepath.Join("overlays", "dev", "pgbouncer", "customers-databases.ini"), "")

	now := time.Now()
	pki, other := t.TempDir(), t.TempDir()
	for _, dir := range []string{pki, other} {
		if err := devcerts.Generate(dir, now); err != nil {
			t.Fatal(err)
		}
	}
	elsewhereCert, elsewhereKey := filepath.Join(pki, "elsewhere.pem"), filepath.Join(pki, "elsewhere-key.pem")
	if err := devcerts.IssueServer(pki, "db.elsewhere.test", elsewhereCert, elsewhereKey, now); err != nil {
		t.Fatal(err)
	}
	cluster := dbtest.NewCluster(t)
	admin, err := database.Open(context.Background(), database.Config{DSN: cluster.DSN()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec("CREATE ROLE app LOGIN").Error; err != nil {
		t.Fatal(err)
	}
	_ = database.Close(admin)

	for _, server := range []struct {
		name      string
		cert, key string
		cases     []pgbouncerCase
	}{
		{"a certificate naming localhost", filepath.Join(pki, devcerts.PostgresCert), filepath.Join(pki, devcerts.PostgresKey), []pgbouncerCase{
			{name: "the CA that signed it", ca: filepath.Join(pki, devcerts.CACert), ok: true},
			{name: "another private CA", ca: filepath.Join(other, devcerts.CACert), ok: false},
			{name: "no CA bundle (no ConfigMap database-ca)", ca: "", ok: false},
			{name: "dev's databases.ini and no CA bundle", ca: "", extra: devOverride, ok: true},
		}},
		{"a certificate of the same CA naming another host", elsewhereCert, elsewhereKey, []pgbouncerCase{
			{name: "the CA that signed it", ca: filepath.Join(pki, devcerts.CACert), ok: false},
		}},
	} {
		t.Run(server.name, func(t *testing.T) {
			port := cluster.EnableTLS(readFile(t, server.cert), readFile(t, server.key))
			for _, tt := range server.cases {
				t.Run(tt.name, func(t *testing.T) {
					dsn := startPgBouncer(t, bin, string(shipped), port, tt)
					err := queryThrough(dsn, tt.extra != "")
					var refused *pgconn.PgError // PgBouncer's own error: it got no server for the client
					switch {
					case tt.ok && err != nil:
						t.Errorf("a query through PgBouncer: %v, want success", err)
					case !tt.ok && err == nil:
						t.Error("a query through PgBouncer succeeded, want PgBouncer to refuse the server")
					case !tt.ok && (!errors.As(err, &refused) || refused.Code != protocolViolation):
						t.Errorf("a query through PgBouncer: %v, want PgBouncer's error 08P01 (no server)", err)
					}
				})
			}
		})
	}
}

// protocolViolation is the SQLSTATE PgBouncer answers a client with when it found no server
// for it in query_wait_timeout ("pooler error").
const protocolViolation = "08P01"

// pgbouncerCase is one PgBouncer the test starts: the CA bundle it is given (none when ""),
// and settings added after pgbouncer.ini, as databases.ini adds them.
type pgbouncerCase struct {
	name, ca, extra string
	ok              bool
}

// pgbouncerBinary returns Debian's pgbouncer; without it the test skips locally and fails in CI.
func pgbouncerBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/pgbouncer", "pgbouncer"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("pgbouncer is required in CI (apt-get install pgbouncer)")
	}
	t.Skip("pgbouncer not found")
	return ""
}

// startPgBouncer writes the shipped pgbouncer.ini with the pod's paths and addresses replaced
// by the test's (a Unix socket in a folder of its own instead of a TCP port, the CA bundle of
// tt), a databases.ini naming the server at localhost:port, and starts PgBouncer on them. It
// returns the DSN of a client of PgBouncer.
func startPgBouncer(t *testing.T, bin, shipped string, port int, tt pgbouncerCase) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgbouncer-") // short: a socket's path has a limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ca := filepath.Join(dir, "missing-ca.crt")
	if tt.ca != "" {
		ca = filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(ca, readFile(t, tt.ca), 0o644); err != nil { //nolint:gosec // a CA certificate is public
			t.Fatal(err)
		}
	}
	local := map[string]string{
		"listen_addr":        "", // no TCP: the socket only, so no port is borrowed
		"unix_socket_dir":    dir,
		"listen_port":        "6432",
		"auth_file":          filepath.Join(dir, "userlist.txt"),
		"server_tls_ca_file": ca,
	}
	var ini []string
	for _, line := range strings.Split(shipped, "\n") {
		k, _, ok := strings.Cut(line, "=")
		switch {
		case strings.HasPrefix(line, "%include "):
			line = "%include " + filepath.Join(dir, "databases.ini")
		case ok && !strings.HasPrefix(line, ";"):
			if v, pod := local[strings.TrimSpace(k)]; pod {
				line = strings.TrimSpace(k) + " = " + v
			}
		}
		ini = append(ini, line)
	}
	files := map[string]string{
		"pgbouncer.ini": strings.Join(ini, "\n"),
		"userlist.txt":  `"app" "s3cret"` + "\n",
		// Before the [databases] header, still in [pgbouncer]: the test's settings, so that a
		// refused server fails the client in seconds rather than minutes, then dev's.
		"databases.ini": fmt.Sprintf("server_login_retry = 1\nquery_wait_timeout = 3\n%s\n[databases]\npostgres = host=localhost port=%d dbname=postgres\n", tt.extra, port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	argv := []string{bin, filepath.Join(dir, "pgbouncer.ini")}
	// PgBouncer refuses to run as root: as root, run it as the postgres user, who owns the folder.
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		for _, name := range []string{"", "pgbouncer.ini", "userlist.txt", "databases.ini", "ca.crt"} {
			if err := os.Lchown(filepath.Join(dir, name), uid, gid); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	var log strings.Builder
	cmd := exec.CommandContext(context.Background(), argv[0], argv[1:]...) //nolint:gosec // the test's own PgBouncer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // runuser and PgBouncer, ended together
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM: PgBouncer's immediate shutdown (SIGINT waits for its servers).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("PgBouncer's log:\n%s", log.String())
		}
	})
	socket := filepath.Join(dir, ".s.PGSQL.6432")
	for {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("PgBouncer exited:\n%s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Sprintf("postgres://app@/postgres?host=%s&port=6432&sslmode=disable&default_query_exec_mode=exec&connect_timeout=10", url.QueryEscape(dir))
}

// queryThrough opens dsn (with the password of userlist.txt) and asks the server whether the
// connection PgBouncer made to it uses TLS; unless plain, it must.
func queryThrough(dsn string, plainAllowed bool) error {
	db, err := database.Open(context.Background(), database.Config{DSN: dsn, Password: "s3cret"}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = database.Close(db) }()
	var ssl bool
	if err := db.Raw("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl).Error; err != nil {
		return err
	}
	if !ssl && !plainAllowed {
		return errors.New("PgBouncer reached the server without TLS")
	}
	return nil
}

// iniSection returns the settings of section in the ini file path, as lines ("": those before
// the first section header).
func iniSection(t *testing.T, path, section string) string {
	t.Helper()
	var out []string
	current := ""
	for _, line := range strings.Split(string(readFile(t, path)), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			current = strings.Trim(line, "[]")
			continue
		}
		if current == section && line != "" && !strings.HasPrefix(line, ";") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no [%s] settings", path, section)
	}
	return strings.Join(out, "\n")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // the test's own files
	if err != nil {
		t.Fatal(err)
	}
	return b
}
