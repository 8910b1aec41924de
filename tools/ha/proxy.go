package ha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proxy is PgBouncer in transaction pooling mode in front of HAProxy, which sends every
// connection to the node whose Patroni answers 200 on /primary, as a Kubernetes Service
// follows the leader: PgBouncer 1.18 has no target_session_attrs. When a node stops being the
// primary, HAProxy's health check marks it down within a second and closes the connections it
// carried to it (on-marked-down shutdown-sessions), so PgBouncer's server connections to the
// old primary end, and PgBouncer connects again, through HAProxy, to the new one. While no
// node is the primary, a client waits at most query_wait_timeout (5 s, not PgBouncer's 120 s)
// for a server connection and then gets an error (SQLSTATE 08P01) that the services answer
// with 503, rather than a request that hangs through the whole failover. Those settings are
// the shipped ones (deploy/components/pgbouncer/pgbouncer.ini), so the failover tests run what
// Kubernetes runs.
type Proxy struct {
	// Port is PgBouncer's, on 127.0.0.1; HAProxyPort HAProxy's.
	Port, HAProxyPort int
	running           []running
}

// running is a process StartProxy started, and what closes when it has exited.
type running struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// ProxyMissing returns the Debian packages StartProxy needs that are not installed.
func ProxyMissing() []string {
	var missing []string
	for _, p := range []struct{ prog, pkg string }{{"haproxy", "haproxy"}, {"pgbouncer", "pgbouncer"}} {
		if _, err := exec.LookPath(p.prog); err != nil {
			if _, err := exec.LookPath("/usr/sbin/" + p.prog); err != nil {
				missing = append(missing, p.pkg)
			}
		}
	}
	return missing
}

// StartProxy starts HAProxy and PgBouncer in front of the cluster, on the two ports after the
// nodes', and returns once PgBouncer accepts connections.
func (c *Cluster) StartProxy(ctx context.Context) (*Proxy, error) {
	if m := ProxyMissing(); len(m) > 0 {
		return nil, fmt.Errorf("missing programs: apt-get install %s", strings.Join(m, " "))
	}
	last := c.nodes[len(c.nodes)-1]
	p := &Proxy{HAProxyPort: last.RESTPort + 1, Port: last.RESTPort + 2}
	dir := filepath.Join(c.dir, "proxy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var servers strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&servers, "  server %s 127.0.0.1:%d check port %d\n", n.Name, n.Port, n.RESTPort)
	}
	socket := filepath.Join(dir, "haproxy.sock")
	haproxyConf := fmt.Sprintf(`global
  maxconn 500
  stats socket %s
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
listen postgres
  bind 127.0.0.1:%d
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
%s`, socket, p.HAProxyPort, servers.String())
	failover, err := shippedFailoverSettings()
	if err != nil {
		return nil, err
	}
	pgbouncerConf := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = md5
auth_file = %[3]s/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 10
server_idle_timeout = 10
%[4]s
ignore_startup_parameters = extra_float_digits
logfile = %[3]s/pgbouncer.log
`, p.HAProxyPort, p.Port, dir, failover)
	files := map[string]string{
		"haproxy.cfg":   haproxyConf,
		"pgbouncer.ini": pgbouncerConf,
		"userlist.txt":  fmt.Sprintf("%q %q\n", AppUser, AppPassword),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	if c.cred != nil {
		// PgBouncer refuses to run as root: it runs as postgres, like Patroni.
		for _, name := range []string{"", "pgbouncer.ini", "userlist.txt"} {
			if err := os.Chown(filepath.Join(dir, name), int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	// Both run until Close, not for ctx, which bounds the start only.
	haproxy := exec.CommandContext(context.WithoutCancel(ctx), "haproxy", "-db", "-f", filepath.Join(dir, "haproxy.cfg")) //nolint:gosec // our own configuration
	haproxy.Stdout = c.output("haproxy")
	haproxy.Stderr = haproxy.Stdout
	pgbouncer := exec.CommandContext(context.WithoutCancel(ctx), "pgbouncer", filepath.Join(dir, "pgbouncer.ini")) //nolint:gosec // our own configuration
	pgbouncer.Dir = dir
	pgbouncer.Stdout = c.output("pgbouncer")
	pgbouncer.Stderr = pgbouncer.Stdout
	pgbouncer.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	for _, cmd := range []*exec.Cmd{haproxy, pgbouncer} {
		if err := cmd.Start(); err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", cmd.Path, err), p.Close())
		}
		r := running{cmd: cmd, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(r.done) }()
		p.running = append(p.running, r)
	}
	primary, err := c.Primary(ctx)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	// HAProxy takes every server for up until its first checks say otherwise: until it has
	// marked all but the primary down, a connection could reach a standby.
	err = until(ctx, 30*time.Second, func() error {
		up, err := serversUp(ctx, socket)
		if err != nil {
			return err
		}
		if len(up) != 1 || up[0] != primary.Name {
			return fmt.Errorf("HAProxy has %v up, want only the primary %s", up, primary.Name)
		}
		if !listening(p.Port) {
			return fmt.Errorf("PgBouncer does not listen on 127.0.0.1:%d", p.Port)
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

// serversUp asks HAProxy's stats socket which servers of the postgres proxy are up.
func serversUp(ctx context.Context, socket string) ([]string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	// CSV: proxy name, server name, ..., the 18th field is the status (UP, DOWN, ...).
	var up []string
	for line := range strings.Lines(string(out)) {
		f := strings.Split(line, ",")
		if len(f) > 17 && f[0] == "postgres" && f[1] != "FRONTEND" && f[1] != "BACKEND" && strings.HasPrefix(f[17], "UP") {
			up = append(up, f[1])
		}
	}
	return up, nil
}

// DSN is the DSN of database db through PgBouncer, with pgx's exec query mode: PgBouncer 1.18
// in transaction mode cannot carry prepared statements from one transaction to the next.
func (p *Proxy) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%s/%s?sslmode=disable&default_query_exec_mode=exec&connect_timeout=3", AppUser, AppPassword, strconv.Itoa(p.Port), db)
}

// Close stops PgBouncer and HAProxy.
func (p *Proxy) Close() error {
	for i := len(p.running) - 1; i >= 0; i-- {
		r := p.running[i]
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		<-r.done
	}
	p.running = nil
	return nil
}

// failoverSettings are the keys of the shipped pgbouncer.ini that decide what clients see
// during a failover.
var failoverSettings = []string{"query_wait_timeout", "server_connect_timeout", "server_login_retry"}

// shippedFailoverSettings returns failoverSettings' lines from deploy/components/pgbouncer/
// pgbouncer.ini, found from this source file's folder (tools/ha runs from the repository).
func shippedFailoverSettings() (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("no source path to find deploy/components/pgbouncer/pgbouncer.ini from")
	}
	ini := filepath.Join(filepath.Dir(self), "..", "..", "deploy", "components", "pgbouncer", "pgbouncer.ini")
	data, err := os.ReadFile(ini) //nolint:gosec // the repository's own file
	if err != nil {
		return "", err
	}
	found := map[string]string{}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(line, "=")
		if k = strings.TrimSpace(k); ok && slices.Contains(failoverSettings, k) {
			found[k] = strings.TrimSpace(v)
		}
	}
	var out []string
	for _, k := range failoverSettings {
		v, ok := found[k]
		if !ok {
			return "", fmt.Errorf("%s sets no %s", ini, k)
		}
		out = append(out, k+" = "+v)
	}
	return strings.Join(out, "\n"), nil
}
