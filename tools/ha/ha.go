// Package ha runs a highly available PostgreSQL on loopback, for `make run-ha` and the failover
// tests: one etcd (Debian's etcd-server) as Patroni's distributed configuration store, and
// Patroni (Debian's patroni) managing PostgreSQL 15 instances on ports of their own, in
// synchronous mode (a commit is acknowledged once a standby has it, so the standby Patroni
// promotes has every acknowledged write), each in a data folder under a throwaway directory.
// It runs as Patroni's acceptance tests do: processes on the machine, no containers.
//
// Patroni runs as the postgres user when the harness runs as root (PostgreSQL refuses root).
package ha

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBin is where Debian installs PostgreSQL 15's server programs.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// AppUser and AppPassword are the role the services connect as; Start creates it with
// CREATEDB. Development only: the cluster listens on loopback and lives in a temporary folder.
const (
	AppUser     = "shop"
	AppPassword = "shop" //nolint:gosec // the throwaway cluster's well-known password
	superuser   = "postgres"
	superPass   = "postgres-ha" //nolint:gosec // the throwaway cluster's well-known password
	replUser    = "replicator"
	replPass    = "replicator-ha" //nolint:gosec // the throwaway cluster's well-known password
	scope       = "shop"
)

// Missing returns the programs the harness needs that are not installed, as Debian package
// names (apt-get install them): etcd-server, patroni, postgresql-15.
func Missing() []string {
	var missing []string
	for _, p := range []struct{ prog, pkg string }{
		{"etcd", "etcd-server"}, {"patroni", "patroni"},
		{filepath.Join(PostgresBin, "postgres"), "postgresql-15"},
	} {
		if _, err := exec.LookPath(p.prog); err != nil {
			missing = append(missing, p.pkg)
		}
	}
	return missing
}

// Config says what to run.
type Config struct {
	// Dir is the folder the cluster lives in; empty: a new temporary folder, removed on Close.
	Dir string
	// Nodes is how many PostgreSQL instances Patroni manages (default 3).
	Nodes int
	// BasePort is the first of the ports the cluster listens on, on 127.0.0.1: etcd's client
	// and peer ports, then a PostgreSQL port and a Patroni REST port per node, then HAProxy's
	// and PgBouncer's (StartProxy). Zero picks a
	// block of unusual ports at random, so that runs beside each other do not collide.
	BasePort int
	// Output returns where the log of the named process ("etcd", "node1") goes; nil
	// discards them.
	Output func(name string) io.Writer
}

// Cluster is a running etcd, Patroni and its PostgreSQL instances.
type Cluster struct {
	dir, removeDir string
	etcd           *exec.Cmd
	etcdPort       int
	nodes          []*Node
	output         func(string) io.Writer
	cred           *syscall.Credential
}

// Node is one Patroni and the PostgreSQL it manages.
type Node struct {
	// Name is Patroni's name of the member: node1, node2, ...
	Name string
	// Port is PostgreSQL's port on 127.0.0.1, RESTPort Patroni's REST API's.
	Port, RESTPort int
	config, data   string
	cmd            *exec.Cmd
	exited         chan struct{}
}

// Start starts etcd and the Patroni nodes and returns once a primary takes writes and every
// other node streams from it, with the role AppUser created.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("missing programs: apt-get install %s", strings.Join(m, " "))
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.BasePort == 0 {
		cfg.BasePort = 20000 + rand.IntN(400)*100 //nolint:gosec // a port block, not a secret
	}
	if cfg.Output == nil {
		cfg.Output = func(string) io.Writer { return io.Discard }
	}
	c := &Cluster{dir: cfg.Dir, output: cfg.Output, etcdPort: cfg.BasePort}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "shop-ha-"); err != nil {
			return nil, err
		}
		c.removeDir = c.dir
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	// etcd's two, two per node, and two for StartProxy.
	for p := cfg.BasePort; p < cfg.BasePort+4+2*cfg.Nodes; p++ {
		if listening(p) {
			return nil, fmt.Errorf("port %d is taken: choose another BasePort", p)
		}
	}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if err := c.startEtcd(ctx, cfg.BasePort+1); err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		n := &Node{Name: fmt.Sprintf("node%d", i+1), Port: cfg.BasePort + 2 + 2*i, RESTPort: cfg.BasePort + 3 + 2*i}
		n.config = filepath.Join(c.dir, n.Name+".yml")
		n.data = filepath.Join(c.dir, n.Name)
		if err := c.writeConfig(n); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	// The first node bootstraps the cluster alone; the others then copy it.
	if err := c.StartNode(c.nodes[0]); err != nil {
		return nil, err
	}
	if _, err := c.waitPrimary(ctx); err != nil {
		return nil, err
	}
	for _, n := range c.nodes[1:] {
		if err := c.StartNode(n); err != nil {
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	if err := c.createRole(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Attach returns the cluster that Start runs elsewhere with cfg's BasePort and Nodes (`make
// run-ha`), for Members, Primary and Switchover; it starts and stops nothing.
func Attach(cfg Config) *Cluster {
	c := &Cluster{etcdPort: cfg.BasePort}
	for i := range cmp.Or(cfg.Nodes, 3) {
		c.nodes = append(c.nodes, &Node{Name: fmt.Sprintf("node%d", i+1), Port: cfg.BasePort + 2 + 2*i, RESTPort: cfg.BasePort + 3 + 2*i})
	}
	return c
}

// Dir is the folder the cluster lives in.
func (c *Cluster) Dir() string { return c.dir }

// Nodes returns the nodes, in the order of their names.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Hosts is every node's host:port, comma-separated, as a multi-host DSN lists them.
func (c *Cluster) Hosts() string {
	hosts := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		hosts[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port))
	}
	return strings.Join(hosts, ",")
}

// DSN is the DSN of database db for AppUser: every node, and target_session_attrs=read-write,
// so that pgx connects to whichever node is the primary now.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=3", AppUser, AppPassword, c.Hosts(), db)
}

// CreateDatabase creates database name owned by AppUser, unless it exists, and returns its
// DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.superDSN())
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER "+AppUser); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return c.DSN(name), nil
}

func (c *Cluster) superDSN() string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable&target_session_attrs=read-write&connect_timeout=3", superuser, superPass, c.Hosts())
}

func (c *Cluster) createRole(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.superDSN())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN
    CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s';
  END IF;
END $$`, AppUser, AppUser, AppPassword))
	return err
}

// stopTimeout bounds how long Close waits for the nodes to stop.
const stopTimeout = 20 * time.Second

// member is one entry of Patroni's GET /cluster.
type member struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	Lag   any    `json:"lag"`
}

// Members asks any node's Patroni REST API for the cluster's members.
func (c *Cluster) Members(ctx context.Context) ([]member, error) {
	var errs []error
	for _, n := range c.nodes {
		var body struct {
			Members []member `json:"members"`
		}
		if err := getJSON(ctx, n.restURL("/cluster"), &body); err != nil {
			errs = append(errs, err)
			continue
		}
		return body.Members, nil
	}
	return nil, errors.Join(errs...)
}

// Primary returns the node that is the primary now: the one whose Patroni answers 200 on
// /primary, as a load balancer's health check asks.
func (c *Cluster) Primary(ctx context.Context) (*Node, error) {
	for _, n := range c.nodes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.restURL("/primary"), nil)
		if err != nil {
			return nil, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return n, nil
		}
	}
	return nil, errors.New("no node is the primary")
}

// WaitHealthy waits until there is a primary and every other running node is a replica that
// streams from it, one of them synchronous.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return until(ctx, 120*time.Second, func() error {
		ms, err := c.Members(ctx)
		if err != nil {
			return err
		}
		leaders, streaming, sync := 0, 0, 0
		for _, m := range ms {
			switch m.Role {
			case "leader":
				if m.State == "running" {
					leaders++
				}
			case "sync_standby", "replica":
				if m.State == "streaming" || m.State == "running" {
					streaming++
				}
				if m.Role == "sync_standby" {
					sync++
				}
			}
		}
		running := 0
		for _, n := range c.nodes {
			if n.Running() {
				running++
			}
		}
		if leaders != 1 || streaming != running-1 || (running > 1 && sync == 0) {
			return fmt.Errorf("members %+v: want a leader and %d streaming replicas, one synchronous", ms, running-1)
		}
		return nil
	})
}

func (c *Cluster) waitPrimary(ctx context.Context) (*Node, error) {
	var primary *Node
	err := until(ctx, 120*time.Second, func() error {
		var err error
		primary, err = c.Primary(ctx)
		return err
	})
	return primary, err
}

// Switchover makes Patroni hand the primary role to the synchronous standby (POST
// /switchover, what `patronictl switchover` asks), a planned change, and waits until the new
// primary takes writes. It returns the old and new
// primary.
func (c *Cluster) Switchover(ctx context.Context) (from, to *Node, err error) {
	from, err = c.Primary(ctx)
	if err != nil {
		return nil, nil, err
	}
	ms, err := c.Members(ctx)
	if err != nil {
		return nil, nil, err
	}
	candidate := ""
	for _, m := range ms {
		if m.Role == "sync_standby" {
			candidate = m.Name
		}
	}
	if candidate == "" {
		return nil, nil, fmt.Errorf("no synchronous standby to switch over to: %+v", ms)
	}
	if err := post(ctx, from.restURL("/switchover"), map[string]string{"leader": from.Name, "candidate": candidate}); err != nil {
		return nil, nil, fmt.Errorf("switchover: %w", err)
	}
	err = until(ctx, 120*time.Second, func() error {
		p, err := c.Primary(ctx)
		if err != nil {
			return err
		}
		if p.Name != candidate {
			return fmt.Errorf("primary is %s, want %s", p.Name, candidate)
		}
		to = p
		return nil
	})
	return from, to, err
}

// Kill kills n's Patroni and its PostgreSQL with SIGKILL, as a machine that dies: Patroni
// cannot hand over, and the other nodes fail over once the leader key expires (the TTL).
func (c *Cluster) Kill(n *Node) error {
	var errs []error
	if pid := n.postmasterPID(); pid > 0 {
		// The postmaster runs in a session of its own; its backends die with it.
		errs = append(errs, killTree(pid))
	}
	if n.cmd != nil && n.cmd.Process != nil {
		errs = append(errs, syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL))
		<-n.exited
	}
	return errors.Join(errs...)
}

// StartNode starts n's Patroni: a node Kill stopped rejoins the cluster as a standby
// (rewinding its data folder with pg_rewind when it has diverged).
func (c *Cluster) StartNode(n *Node) error {
	// It runs until Kill or Close, not for a caller's context.
	cmd := exec.CommandContext(context.Background(), "patroni", n.config) //nolint:gosec // the cluster's own configuration file
	// Patroni runs in its own folder, which its user may read, with that folder as HOME: as
	// the postgres user it could not read the caller's.
	cmd.Dir = n.data
	cmd.Env = append(os.Environ(), "HOME="+n.data)
	cmd.Stdout = c.output(n.Name)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start patroni %s (its user must be able to reach %s): %w", n.Name, n.data, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(n.exited)
	return nil
}

// Running reports whether n's Patroni runs.
func (n *Node) Running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

func (n *Node) restURL(path string) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.RESTPort)) + path
}

func (n *Node) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(n.data, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	// A stale file may name a process that is not this node's PostgreSQL any more.
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if pid <= 0 || err != nil || !strings.Contains(string(cmdline), n.data) {
		return 0
	}
	return pid
}

// Close stops every node at once (SIGTERM: Patroni stops its PostgreSQL; one at a time, the
// others would take each stop for a failure and fail over), kills what has not stopped
// within stopTimeout, stops etcd, and removes the folder Start made.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.nodes {
		if n.Running() {
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(stopTimeout)
	for _, n := range c.nodes {
		if n.Running() {
			select {
			case <-n.exited:
			case <-deadline:
			}
		}
		if n.Running() {
			errs = append(errs, c.Kill(n))
		}
		if pid := n.postmasterPID(); pid > 0 {
			_ = killTree(pid)
		}
	}
	if c.etcd != nil && c.etcd.Process != nil {
		_ = c.etcd.Process.Signal(syscall.SIGTERM)
		_ = c.etcd.Wait()
	}
	if c.removeDir != "" {
		errs = append(errs, os.RemoveAll(c.removeDir))
	}
	return errors.Join(errs...)
}

func (c *Cluster) startEtcd(ctx context.Context, peerPort int) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	// It runs until Close, not for ctx, which bounds the start only.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), "etcd", //nolint:gosec // fixed program, the cluster's own ports
		"--name", "etcd", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "etcd="+peer, "--enable-v2=true")
	cmd.Stdout = c.output("etcd")
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	c.etcd = cmd
	return until(ctx, 30*time.Second, func() error { return getJSON(ctx, client+"/health", &struct{}{}) })
}

func (c *Cluster) writeConfig(n *Node) error {
	if err := os.MkdirAll(n.data, 0o700); err != nil {
		return err
	}
	if c.cred != nil {
		for _, p := range []string{c.dir, n.data} {
			if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return err
			}
		}
	}
	conf := fmt.Sprintf(`scope: %[1]s
name: %[2]s
log:
  level: INFO
restapi:
  listen: 127.0.0.1:%[3]d
  connect_address: 127.0.0.1:%[3]d
etcd3:
  host: 127.0.0.1:%[4]d
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    master_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_connections: 200
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 128MB
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication %[5]s 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:%[6]d
  connect_address: 127.0.0.1:%[6]d
  data_dir: %[7]s/data
  bin_dir: %[8]s
  pgpass: %[7]s/pgpass
  authentication:
    replication:
      username: %[5]s
      password: %[9]s
    superuser:
      username: %[10]s
      password: %[11]s
    rewind:
      username: %[10]s
      password: %[11]s
  parameters:
    unix_socket_directories: %[7]s
tags:
  nofailover: false
  noloadbalance: false
`, scope, n.Name, n.RESTPort, c.etcdPort, replUser, n.Port, n.data, PostgresBin, replPass, superuser, superPass)
	if err := os.WriteFile(n.config, []byte(conf), 0o600); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(n.config, int(c.cred.Uid), int(c.cred.Gid))
	}
	return nil
}

// postgresUser is the credential of the postgres user, which runs Patroni when the harness
// runs as root.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// killTree kills pid and its children with SIGKILL.
func killTree(pid int) error {
	children := childrenOf(pid)
	err := syscall.Kill(pid, syscall.SIGKILL)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command (in parentheses): state, then the parent's pid.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

func post(ctx context.Context, url string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		return fmt.Errorf("POST %s: %s %s", url, res.Status, msg)
	}
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

func listening(port int) bool {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// until calls f every 200 ms until it returns nil, ctx ends or limit passes, and returns f's
// last error then.
func until(ctx context.Context, limit time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waited %s)", err, limit)
		case <-tick.C:
		}
	}
}
