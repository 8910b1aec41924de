package dbtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Cluster is a throwaway PostgreSQL server of the test's own, on a Unix socket, which the test
// may stop and start to see how services live through a database restart. It leaves nothing
// behind: Cleanup stops it and removes its files.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	asOwner []string // prefix that runs a command as the data folder's owner
	port    int      // the socket's, and with TLS the TCP port's
	tls     bool     // EnableTLS: listen on 127.0.0.1 with TLS
}

// NewCluster initialises and starts a cluster. Without PostgreSQL's server binaries it skips
// the test locally and fails it when CI is set.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL server binaries are required in CI (apt-get install postgresql)")
		}
		t.Skip("PostgreSQL server binaries not found")
	}
	c := &Cluster{t: t, bin: filepath.Dir(bins[len(bins)-1]), port: socketPort}
	dir, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	// PostgreSQL refuses to run as root: as root, run it as the postgres user.
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asOwner = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := c.run(filepath.Join(c.bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v", err)
	}
	c.Start()
	return c
}

// socketPort only names the server's socket file in the cluster's own folder: the server
// listens on no TCP port, so no port is borrowed and no other process can take it while the
// server is stopped.
const socketPort = 5432

// DSN is the cluster's connection string for its postgres database, through the server's Unix
// socket.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable&connect_timeout=2", url.QueryEscape(c.dir), c.port)
}

// EnableTLS restarts the server listening on 127.0.0.1 too, at a free port it returns, with TLS
// from the PEM certificate and key given (the socket stays, without TLS, as PostgreSQL has it).
func (c *Cluster) EnableTLS(certPEM, keyPEM []byte) int {
	c.t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	_ = lis.Close()
	for name, b := range map[string][]byte{"server.crt": certPEM, "server.key": keyPEM} {
		f := filepath.Join(c.dir, "data", name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			c.t.Fatal(err)
		}
		if len(c.asOwner) > 0 {
			if err := exec.CommandContext(context.Background(), "chown", "postgres:postgres", f).Run(); err != nil { //nolint:gosec // fixed arguments
				c.t.Fatal(err)
			}
		}
	}
	c.Stop()
	c.port, c.tls = port, true
	c.Start()
	return port
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses='' -c fsync=off", c.port, c.dir)
	if c.tls {
		opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off", c.port, c.dir)
	}
	if err := c.pgctl("start", "-w", "-l", filepath.Join(c.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("start PostgreSQL: %v\n%s", err, log)
	}
}

// RequirePasswords makes the server ask every user but postgres for a password
// (scram-sha-256), as a production server does; the cluster starts trusting every local user.
func (c *Cluster) RequirePasswords() {
	c.t.Helper()
	hba := "local all postgres trust\nlocal all all scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(c.dir, "data", "pg_hba.conf"), []byte(hba), 0o644); err != nil { //nolint:gosec // read by the server's user
		c.t.Fatal(err)
	}
	if err := c.pgctl("reload"); err != nil {
		c.t.Fatalf("reload PostgreSQL: %v", err)
	}
}

// Stop shuts the server down quickly, disconnecting every client.
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.pgctl("stop", "-w", "-m", "fast"); err != nil {
		c.t.Fatalf("stop PostgreSQL: %v", err)
	}
}

func (c *Cluster) pgctl(args ...string) error {
	return c.run(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", filepath.Join(c.dir, "data")}, args...)...)
}

func (c *Cluster) run(name string, args ...string) error {
	argv := append(append(append([]string{}, c.asOwner...), name), args...)
	cmd := exec.CommandContext(context.Background(), argv[0], argv[1:]...) //nolint:gosec // fixed test binaries
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %w\n%s", argv, err, out)
	}
	return nil
}
