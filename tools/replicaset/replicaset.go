// Package replicaset runs, on one machine and without containers, what the Kubernetes base
// deploys: several customers and cart replicas as processes, each on an address of its own in
// 127.0.0.0/8 (all of which is loopback on Linux), on PostgreSQL, with the migrations applied
// once by the `migrate` subcommand before any replica starts (as the init container migrate does on Kubernetes), and
// cart finding the customers replicas through DNS, as in a cluster: a name server of its own
// on loopback answers one name with the address of every ready customers replica, as a
// cluster's DNS answers a headless Service's name. `make run-replicas` runs it
// (cmd/replicaset); the tests of this package drive the same code to kill, restart and add
// replicas under load.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Defaults of Config: the addresses the make target uses.
var (
	DefaultCustomersIPs = []string{"127.0.0.11", "127.0.0.12"}
	DefaultCartIPs      = []string{"127.0.0.21", "127.0.0.22"}
)

// Default ports, the services' own defaults, the same on every replica of a service (DNS gives
// only addresses, so customers' gRPC port must be the same on all of them).
const (
	DefaultCustomersHTTPPort = 8081
	DefaultCustomersGRPCPort = 50051
	DefaultCartHTTPPort      = 8082
	DefaultCartGRPCPort      = 50052
)

// DefaultCustomersName is the name cart resolves to find the customers replicas.
const DefaultCustomersName = "customers-grpc.shop.test"

// Development secrets, the same on every replica of a service: any customers replica must
// accept the tokens another one issued, and any cart replica the page tokens of another.
// Published here, so for development only (APP_ENV=development).
const (
	jwtSecret       = "replicaset-development-jwt-secret-0123456789"        //nolint:gosec // a published development secret
	pageTokenSecret = "replicaset-development-page-token-secret-0123456789" //nolint:gosec // a published development secret
)

// DrainDelay is how long a replica keeps serving after SIGTERM while it reports not ready, so
// that cart's balancer (gRPC health) and HTTP load balancers (/readyz) move away first.
const DrainDelay = time.Second

// Config says what to run.
type Config struct {
	// Bin is the folder with the customers-svc and cart-svc binaries.
	Bin string
	// CustomersIPs and CartIPs are the loopback addresses of the replicas, one replica each
	// (default DefaultCustomersIPs and DefaultCartIPs).
	CustomersIPs, CartIPs []string
	// The ports of every replica of a service (default the Default…Port constants).
	CustomersHTTPPort, CustomersGRPCPort, CartHTTPPort, CartGRPCPort int
	// CustomersDSN and CartDSN are the PostgreSQL databases of the services; they must exist.
	CustomersDSN, CartDSN string
	// NATSURL is the NATS server with JetStream both services' events go through (empty: none).
	NATSURL string
	// DNSAddr is where the name server listens (default 127.0.0.1:0, a port of its choice).
	DNSAddr string
	// CustomersName is the name that resolves to the customers replicas (default
	// DefaultCustomersName).
	CustomersName string
	// Env holds variables for every process, over the ones Start sets (a short
	// CUSTOMERS_GRPC_MAX_CONNECTION_AGE, say).
	Env map[string]string
	// Output returns where the log of the named process ("customers-1", "cart-migrate") goes;
	// nil discards every log.
	Output func(name string) io.Writer
	// ReadyTimeout bounds how long a replica may take to become ready (default 30 s).
	ReadyTimeout time.Duration
	// Restart is how long the set waits before it starts again a replica that exited on its
	// own (default DefaultBackoff).
	Restart Backoff
}

func (c *Config) defaults() {
	if c.CustomersIPs == nil {
		c.CustomersIPs = DefaultCustomersIPs
	}
	if c.CartIPs == nil {
		c.CartIPs = DefaultCartIPs
	}
	for _, p := range []struct {
		port *int
		def  int
	}{
		{&c.CustomersHTTPPort, DefaultCustomersHTTPPort}, {&c.CustomersGRPCPort, DefaultCustomersGRPCPort},
		{&c.CartHTTPPort, DefaultCartHTTPPort}, {&c.CartGRPCPort, DefaultCartGRPCPort},
	} {
		if *p.port == 0 {
			*p.port = p.def
		}
	}
	if c.DNSAddr == "" {
		c.DNSAddr = "127.0.0.1:0"
	}
	if c.CustomersName == "" {
		c.CustomersName = DefaultCustomersName
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.Output == nil {
		c.Output = func(string) io.Writer { return io.Discard }
	}
	if c.Restart == (Backoff{}) {
		c.Restart = DefaultBackoff
	}
}

// Isolate puts the replicas of c on a block of 127.0.0.0/8 chosen at random, customers on
// "127.X.Y.11" and ".12", cart on ".21" and ".22", and on ports chosen at random below the
// kernel's ephemeral range, so that the set collides neither with `make run-replicas` (the
// default addresses), nor with `make run` (the default ports on every address), nor with
// another isolated set. It returns the block, "127.X.Y.", for replicas added later.
func (c *Config) Isolate() (block string) {
	block = randomLoopbackBlock()
	c.CustomersIPs = []string{block + "11", block + "12"}
	c.CartIPs = []string{block + "21", block + "22"}
	port := 20000 + 4*rand.IntN(2500) //nolint:gosec // picks a port, not a secret
	c.CustomersHTTPPort, c.CustomersGRPCPort, c.CartHTTPPort, c.CartGRPCPort = port, port+1, port+2, port+3
	return block
}

// randomLoopbackBlock returns "127.X.Y." for a block of 127.0.0.0/8 that no make target uses.
func randomLoopbackBlock() string {
	return fmt.Sprintf("127.%d.%d.", 100+rand.IntN(100), 1+rand.IntN(250)) //nolint:gosec // picks an address, not a secret
}

// Set is a running set of replicas and the name server cart resolves customers with.
type Set struct {
	cfg Config
	dns *nameServer

	mu        sync.Mutex
	customers []*Replica
	cart      []*Replica
	// exited receives an error for each replica that exits without being told to.
	exited chan error

	// life ends when Close begins: pending restarts give up.
	life    context.Context
	endLife context.CancelFunc
	// closing is set, under mu, when Close begins: no restart is scheduled after it.
	closing    bool
	restarting sync.WaitGroup

	logMu sync.Mutex
	log   io.Writer // Config.Output(restartLog)
}

// restartLog is the name under which Config.Output receives the set's own log: which replica
// exited, when it is started again.
const restartLog = "replicaset"

func newSet(cfg Config, ns *nameServer) *Set {
	life, endLife := context.WithCancel(context.Background())
	return &Set{
		cfg: cfg, dns: ns, exited: make(chan error, 16),
		life: life, endLife: endLife, log: cfg.Output(restartLog),
	}
}

// logf writes a line to the set's own log.
func (s *Set) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	_, _ = fmt.Fprintf(s.log, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
}

// Start starts the name server, migrates both databases once (the services' `migrate`
// subcommand), then starts the customers replicas and, once they are ready and the name
// resolves to them, the cart replicas; it returns when every replica is ready. Replicas run
// with <SVC>_MIGRATE_ON_START=false, as on Kubernetes, and a drain delay of DrainDelay. ctx
// bounds the start only: the processes run until Close. A replica that exits on its own once
// it was ready is started again after Config.Restart's backoff, as a Deployment's pod is,
// while the others keep serving; the set's log (Config.Output("replicaset")) says so. On
// error, whatever was started is stopped.
func Start(ctx context.Context, cfg Config) (*Set, error) {
	cfg.defaults()
	for _, ip := range append(append([]string{}, cfg.CustomersIPs...), cfg.CartIPs...) {
		if err := checkLoopback(ip); err != nil {
			return nil, err
		}
	}
	ns, err := startNameServer(cfg.DNSAddr)
	if err != nil {
		return nil, err
	}
	ns.set(cfg.CustomersName, nil)
	s := newSet(cfg, ns)
	if err := s.start(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Set) start(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	for i, ip := range s.cfg.CustomersIPs {
		s.customers = append(s.customers, s.newReplica("customers", i+1, ip))
	}
	for i, ip := range s.cfg.CartIPs {
		s.cart = append(s.cart, s.newReplica("cart", i+1, ip))
	}
	// customers first, as cart's readiness does not wait for customers but its first
	// authenticated calls would.
	if err := startAll(ctx, s.customers); err != nil {
		return err
	}
	return startAll(ctx, s.cart)
}

// startAll starts replicas at the same time and waits until every one is ready.
func startAll(ctx context.Context, replicas []*Replica) error {
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { errs[i] = r.Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// migrate runs both services' migrate subcommands, at the same time (two databases), and
// waits for both.
func (s *Set) migrate(ctx context.Context) error {
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, svc := range []string{"customers", "cart"} {
		wg.Go(func() {
			name := svc + "-migrate"
			cmd := exec.CommandContext(ctx, s.binary(svc), "migrate") //nolint:gosec // the service binaries of Config.Bin
			cmd.Env = s.env(svc, nil)
			out := s.cfg.Output(name)
			tail := &tailBuffer{}
			cmd.Stdout = io.MultiWriter(out, tail)
			cmd.Stderr = cmd.Stdout
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%s: %w%s", name, err, tail.suffix())
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Set) binary(svc string) string { return filepath.Join(s.cfg.Bin, svc+"-svc") }

// ports returns the HTTP, gRPC and metrics ports of every replica of svc; metrics on the port
// Kubernetes uses, each replica on its own address.
func (c *Config) ports(svc string) (http, grpc, metrics int) {
	if svc == "cart" {
		return c.CartHTTPPort, c.CartGRPCPort, 9092
	}
	return c.CustomersHTTPPort, c.CustomersGRPCPort, 9091
}

// env returns the environment of a process of svc, replica r (nil for the migrate
// subcommand): this process's own, then what every replica of the set needs, then Config.Env.
func (s *Set) env(svc string, r *Replica) []string {
	vars := map[string]string{
		"APP_ENV":              "development",
		"LOG_FORMAT":           "text",
		"SHUTDOWN_DRAIN_DELAY": DrainDelay.String(),
	}
	prefix := map[string]string{"customers": "CUSTOMERS_", "cart": "CART_"}[svc]
	v := func(name, value string) { vars[prefix+name] = value }
	if r != nil {
		v("HTTP_ADDR", r.HTTPAddr)
		v("GRPC_ADDR", r.GRPCAddr)
		v("METRICS_ADDR", r.MetricsAddr)
	}
	v("DEBUG_ADDR", "") // one fixed pprof address would collide between replicas
	v("MIGRATE_ON_START", "false")
	v("NATS_URL", s.cfg.NATSURL)
	v("DEMO_DATA", "true")
	// Plaintext gRPC on loopback: the certificates of `make certs` name other hosts.
	for _, tls := range []string{"GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA"} {
		v(tls, "")
	}
	switch svc {
	case "customers":
		v("DATABASE_URL", s.cfg.CustomersDSN)
		v("JWT_SECRET", jwtSecret)
	case "cart":
		v("DATABASE_URL", s.cfg.CartDSN)
		v("PAGE_TOKEN_SECRET", pageTokenSecret)
		v("CUSTOMERS_ADDR", s.CustomersTarget())
		for _, tls := range []string{"CUSTOMERS_TLS_CA", "CUSTOMERS_TLS_CERT", "CUSTOMERS_TLS_KEY", "CUSTOMERS_TLS_SERVER_NAME"} {
			v(tls, "")
		}
	}
	for k, val := range s.cfg.Env {
		vars[k] = val
	}
	env := os.Environ()
	for k, val := range vars {
		env = append(env, k+"="+val)
	}
	return env
}

// CustomersTarget is cart's CART_CUSTOMERS_ADDR: the customers name, resolved by the set's
// name server (grpc-go's dns resolver takes the server as the target's authority), with
// customers' gRPC port.
func (s *Set) CustomersTarget() string {
	return fmt.Sprintf("dns://%s/%s:%d", s.dns.addr, s.cfg.CustomersName, s.cfg.CustomersGRPCPort)
}

// DNSAddr is where the name server listens.
func (s *Set) DNSAddr() string { return s.dns.addr }

// CustomersName is the name that resolves to the ready customers replicas.
func (s *Set) CustomersName() string { return s.cfg.CustomersName }

// Customers returns the customers replicas, in the order they were added.
func (s *Set) Customers() []*Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Replica(nil), s.customers...)
}

// Cart returns the cart replicas.
func (s *Set) Cart() []*Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Replica(nil), s.cart...)
}

// AddCustomers starts one more customers replica on ip and, once it is ready, adds its
// address to the name's answer, as a Deployment scaled up adds a pod to its headless Service.
// cart reaches it after it resolves the name again: when a connection to customers reaches
// CUSTOMERS_GRPC_MAX_CONNECTION_AGE, no sooner than grpc-go's minimum interval between
// resolutions (30 s) after the previous one.
func (s *Set) AddCustomers(ctx context.Context, ip string) (*Replica, error) {
	if err := checkLoopback(ip); err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.newReplica("customers", len(s.customers)+1, ip)
	s.customers = append(s.customers, r)
	s.mu.Unlock()
	return r, r.Start(ctx)
}

// Exited receives an error for each replica that exits without Stop, Kill or Close; the set
// starts such a replica again (Start). It is for watching: nobody need receive from it.
func (s *Set) Exited() <-chan error { return s.exited }

// superviseRestart starts r again, after the backoff, as the kubelet restarts a container
// that exited: r was up (ready) for upFor before it exited on its own. A start that fails
// (the process exits before it is ready, or is not ready in time) is tried again after a
// longer delay, so that a replica that cannot start does not spin. It gives up when Close
// begins.
func (s *Set) superviseRestart(r *Replica, upFor time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.restarting.Go(func() {
		for {
			delay := r.nextRestartDelay(upFor)
			upFor = 0
			s.logf("%s: starting it again in %v", r.Name, delay)
			select {
			case <-s.life.Done():
				return
			case <-time.After(delay):
			}
			err := r.start(s.life, true)
			if s.life.Err() != nil {
				return
			}
			if errors.Is(err, errHeld) {
				s.logf("%s: %v: not starting it again", r.Name, err)
				return
			}
			if err == nil {
				s.logf("%s: restarted (pid %d), ready", r.Name, r.PID())
				return
			}
			s.logf("%s: restart failed: %v", r.Name, err)
		}
	})
}

// Close stops every replica still running, all at once, as Stop does, and then the name
// server; a restart pending or under way gives up first. It returns the errors of replicas
// that did not exit cleanly.
func (s *Set) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.endLife()
	s.restarting.Wait()
	all := append(s.Customers(), s.Cart()...)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, r := range all {
		wg.Go(func() { errs[i] = r.Stop() })
	}
	wg.Wait()
	return errors.Join(append(errs, s.dns.close())...)
}

// updateDNS makes the customers name resolve to the replicas that are ready.
func (s *Set) updateDNS() {
	var addrs []netip.Addr
	for _, r := range s.Customers() {
		if r.inDNS() {
			addrs = append(addrs, netip.MustParseAddr(r.IP))
		}
	}
	s.dns.set(s.cfg.CustomersName, addrs)
}

// checkLoopback fails unless ip is an IPv4 address in 127.0.0.0/8.
func checkLoopback(ip string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Errorf("replica address %q: want an IPv4 loopback address (127.0.0.0/8)", ip)
	}
	return nil
}
