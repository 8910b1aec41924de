// Command replicaset runs, on one machine and without containers, what the Kubernetes base
// deploys (`make run-replicas`): two customers and two cart replicas on their own loopback
// addresses, each service on its own PostgreSQL database (created when missing), through
// PgBouncer when it is installed, migrated once before the replicas start, and cart finding
// customers through a name server of its own. It prints where everything is and runs until
// Ctrl-C (SIGINT) or SIGTERM, starting again, with backoff, a replica that exits meanwhile;
// then it stops every replica with SIGTERM (they drain and shut down gracefully) and
// PgBouncer if it started it. See package replicaset.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/acme/shop/tools/replicaset"
)

// defaultAdmin is the role that `make db` creates on the local PostgreSQL.
const defaultAdmin = "postgres://shop:shop@127.0.0.1:5432/postgres?sslmode=disable" //nolint:gosec // the local development role's well-known password

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicaset:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("replicaset", flag.ContinueOnError)
	root := fs.String("root", ".", "repository root (for scripts/pgbouncer.sh)")
	bin := fs.String("bin", "bin", "folder with the customers-svc and cart-svc binaries (make build)")
	admin := fs.String("admin", defaultAdmin, "DSN of a PostgreSQL role that may create databases")
	customersDB := fs.String("customers-db", "shop_customers", "customers' database, created when missing")
	cartDB := fs.String("cart-db", "shop_cart", "cart's database, created when missing")
	usePgBouncer := fs.Bool("pgbouncer", true, "connect through PgBouncer (transaction pooling) when it is installed")
	pgbouncerPort := fs.Int("pgbouncer-port", 6432, "PgBouncer's port on 127.0.0.1")
	dnsAddr := fs.String("dns", "127.0.0.1:0", "where the name server listens")
	natsAddr := fs.String("nats", "127.0.0.1:4224", "where the NATS server listens (4222 is often the machine's own, 4223 make run's)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	customersDSN, err := replicaset.EnsureDatabase(ctx, *admin, *customersDB)
	if err != nil {
		return err
	}
	cartDSN, err := replicaset.EnsureDatabase(ctx, *admin, *cartDB)
	if err != nil {
		return err
	}
	via := "directly"
	if *usePgBouncer && replicaset.PgBouncerInstalled() {
		pgb, err := replicaset.StartPgBouncer(ctx, filepath.Join(*root, "scripts", "pgbouncer.sh"), *pgbouncerPort)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, pgb.Stop()) }()
		if customersDSN, err = replicaset.ThroughPgBouncer(customersDSN, pgb.Port); err != nil {
			return err
		}
		if cartDSN, err = replicaset.ThroughPgBouncer(cartDSN, pgb.Port); err != nil {
			return err
		}
		via = fmt.Sprintf("through PgBouncer on 127.0.0.1:%d", pgb.Port)
		if !pgb.Started {
			via += " (running already; left running)"
		}
	}

	// A real NATS server with JetStream, from the nats-server module, as the cluster's would be.
	nats, err := replicaset.StartNATS(*natsAddr)
	if err != nil {
		return err
	}
	defer nats.Shutdown()

	logs := &prefixed{w: stdout}
	set, err := replicaset.Start(ctx, replicaset.Config{
		Bin:          *bin,
		CustomersDSN: customersDSN,
		CartDSN:      cartDSN,
		NATSURL:      nats.URL,
		DNSAddr:      *dnsAddr,
		Output:       logs.writer,
	})
	if err != nil {
		return err
	}
	logs.print(banner(set, redacted(customersDSN), redacted(cartDSN), via, nats.URL))

	// As a Deployment: a replica that exits is started again by the set (with backoff, in the
	// log as "replicaset"), and the others keep serving; only Ctrl-C or SIGTERM stops the set.
	<-ctx.Done()
	logs.print("\n  stopping every replica (SIGTERM) ...\n")
	err = set.Close()
	logs.print("  stopped.\n")
	return err
}

// banner says where everything is.
func banner(set *replicaset.Set, customersDB, cartDB, via, natsURL string) string {
	var b strings.Builder
	b.WriteString("\n")
	for _, r := range append(set.Customers(), set.Cart()...) {
		fmt.Fprintf(&b, "  %-12s REST %-26s Swagger UI %-40s gRPC %s\n", r.Name, r.URL(), r.URL()+"/api/v1/docs/", r.GRPCAddr)
	}
	var ips []string
	for _, r := range set.Customers() {
		ips = append(ips, r.IP)
	}
	fmt.Fprintf(&b, "\n  DNS        %s answers %s with %s (A records, TTL 5 s)\n", set.DNSAddr(), set.CustomersName(), strings.Join(ips, ", "))
	fmt.Fprintf(&b, "  cart dials CART_CUSTOMERS_ADDR=%s\n", set.CustomersTarget())
	fmt.Fprintf(&b, "  databases  %s and %s, %s\n", customersDB, cartDB, via)
	fmt.Fprintf(&b, "  NATS       %s (JetStream; UserDeleted from customers' outbox to cart)\n", natsURL)
	b.WriteString("  Demo users' password: testPass123. Press Ctrl-C to stop everything.\n\n")
	return b.String()
}

func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(DSN)"
	}
	u.RawQuery = ""
	return u.Redacted()
}

// prefixed writes the replicas' logs to one writer, each line whole and prefixed with the
// name of the process that wrote it.
type prefixed struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixed) print(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, s)
}

func (p *prefixed) writer(name string) io.Writer {
	return &lineWriter{prefix: fmt.Sprintf("%-16s| ", name), out: p}
}

// lineWriter buffers a process's output until a line is complete.
type lineWriter struct {
	prefix string
	out    *prefixed
	buf    bytes.Buffer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf.Write(p)
	// Whole lines only; an incomplete one waits in buf for the next write.
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		l.out.print(l.prefix + string(l.buf.Next(i+1)))
	}
}
