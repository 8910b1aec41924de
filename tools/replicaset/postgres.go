package replicaset

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnsureDatabase creates the database name, unless it exists, on the server that admin (the
// DSN of a role that may create databases) reaches, and returns the DSN of that database for
// admin's role.
func EnsureDatabase(ctx context.Context, admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("admin DSN: %w", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL unreachable at %s (run `make db`): %w", u.Redacted(), err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for database %s: %w", name, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), nil
}

// ThroughPgBouncer returns dsn with its host and port replaced by PgBouncer's on
// 127.0.0.1:port, and with pgx's exec query mode: PgBouncer 1.18 in transaction mode cannot
// carry prepared statements from one transaction to the next.
func ThroughPgBouncer(dsn string, port int) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("DSN: %w", err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	q := u.Query()
	q.Set("default_query_exec_mode", "exec")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// PgBouncer is the PgBouncer that scripts/pgbouncer.sh runs in transaction pooling mode in
// front of the local PostgreSQL, as the pgbouncer component puts one in front of each
// database on Kubernetes.
type PgBouncer struct {
	// Port is where it listens, on 127.0.0.1.
	Port int
	// Started reports whether StartPgBouncer started it (rather than finding it running), and
	// so whether Stop stops it.
	Started bool
	script  string
}

// PgBouncerInstalled reports whether the pgbouncer program is installed.
func PgBouncerInstalled() bool {
	if _, err := exec.LookPath("pgbouncer"); err == nil {
		return true
	}
	_, err := exec.LookPath("/usr/sbin/pgbouncer")
	return err == nil
}

// StartPgBouncer starts PgBouncer on 127.0.0.1:port with script (scripts/pgbouncer.sh), unless
// something listens there already, which it then takes to be one started earlier and leaves
// running on Stop.
func StartPgBouncer(ctx context.Context, script string, port int) (*PgBouncer, error) {
	p := &PgBouncer{Port: port, script: script}
	if p.listening(ctx) {
		return p, nil
	}
	out, err := exec.CommandContext(ctx, script, "start", strconv.Itoa(port)).CombinedOutput() //nolint:gosec // the repository's own script
	if err != nil {
		return nil, fmt.Errorf("%s start %d: %w\n%s", script, port, err, out)
	}
	p.Started = true
	return p, nil
}

// Stop stops PgBouncer if StartPgBouncer started it.
func (p *PgBouncer) Stop() error {
	if !p.Started {
		return nil
	}
	out, err := exec.CommandContext(context.Background(), p.script, "stop", strconv.Itoa(p.Port)).CombinedOutput() //nolint:gosec // the repository's own script
	if err != nil {
		return errors.Join(fmt.Errorf("%s stop %d: %w", p.script, p.Port, err), errors.New(string(out)))
	}
	// The script only signals it: wait until it has closed its port.
	for range 50 {
		if !p.listening(context.Background()) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("PgBouncer still listens on 127.0.0.1:%d after stop", p.Port)
}

// listening reports whether something accepts connections on PgBouncer's port.
func (p *PgBouncer) listening(ctx context.Context) bool {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)))
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}
