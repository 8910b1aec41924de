// Command ha runs `make run-ha`: a highly available PostgreSQL on loopback (etcd, Patroni and
// three PostgreSQL 15 instances in synchronous mode, package ha), and both services on it,
// two replicas each as `make run-replicas` runs them, connecting with multi-host DSNs and
// target_session_attrs=read-write. It prints where everything is, and how to rehearse a
// switchover (`make failover`, which runs it with -switchover) and a failover, and runs until
// Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/acme/shop/tools/ha"
	"github.com/acme/shop/tools/replicaset"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ha:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("ha", flag.ContinueOnError)
	bin := fs.String("bin", "bin", "folder with the customers-svc and cart-svc binaries (make build)")
	dir := fs.String("dir", "", "folder for etcd's and PostgreSQL's data; empty: a temporary folder, removed on exit")
	basePort := fs.Int("base-port", 25400, "first of the cluster's ports on 127.0.0.1 (etcd, then PostgreSQL and Patroni's REST API per node)")
	nodes := fs.Int("nodes", 3, "PostgreSQL instances")
	quiet := fs.Bool("quiet", false, "discard etcd's and Patroni's logs (they go to <dir>/logs otherwise)")
	switchover := fs.Bool("switchover", false, "do not start anything: switch the primary of the cluster running on -base-port over to its synchronous standby, and exit (make failover)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *switchover {
		from, to, err := ha.Attach(ha.Config{BasePort: *basePort, Nodes: *nodes}).Switchover(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "switched over: %s -> %s; the services follow by themselves\n", from.Name, to.Name)
		return nil
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "shop-ha-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(*dir) }()
	}
	// Patroni runs as the postgres user when this runs as root: it must reach the cluster's
	// folder inside this one.
	if err := os.MkdirAll(*dir, 0o755); err != nil { //nolint:gosec // the folders inside keep their own modes
		return err
	}
	if err := os.Chmod(*dir, 0o755); err != nil { //nolint:gosec // the folders inside keep their own modes
		return err
	}
	logDir := filepath.Join(*dir, "logs")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		return err
	}
	output := func(name string) io.Writer {
		if *quiet {
			return io.Discard
		}
		f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) //nolint:gosec // our own log folder
		if err != nil {
			return io.Discard
		}
		return f
	}
	fmt.Fprintf(stdout, "starting etcd and %d Patroni nodes in %s ...\n", *nodes, *dir)
	cluster, err := ha.Start(ctx, ha.Config{Dir: filepath.Join(*dir, "cluster"), Nodes: *nodes, BasePort: *basePort, Output: output})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cluster.Close()) }()
	customersDSN, err := cluster.CreateDatabase(ctx, "shop_customers")
	if err != nil {
		return err
	}
	cartDSN, err := cluster.CreateDatabase(ctx, "shop_cart")
	if err != nil {
		return err
	}
	set, err := replicaset.Start(ctx, replicaset.Config{Bin: *bin, CustomersDSN: customersDSN, CartDSN: cartDSN, Output: output})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, set.Close()) }()
	primary, err := cluster.Primary(ctx)
	if err != nil {
		return err
	}
	cfg := filepath.Join(*dir, "cluster", primary.Name+".yml")
	fmt.Fprintf(stdout, "\n")
	for _, r := range append(set.Customers(), set.Cart()...) {
		fmt.Fprintf(stdout, "  %-12s REST %-26s gRPC %s\n", r.Name, r.URL(), r.GRPCAddr)
	}
	fmt.Fprintf(stdout, "\n  PostgreSQL  %s (primary now: %s, port %d), user %s, password %s\n", cluster.Hosts(), primary.Name, primary.Port, ha.AppUser, ha.AppPassword)
	fmt.Fprintf(stdout, "  DSNs        %s\n              %s\n", customersDSN, cartDSN)
	fmt.Fprintf(stdout, "  Patroni     patronictl -c %s list    (REST API of node1: 127.0.0.1:%d)\n", cfg, *basePort+3)
	fmt.Fprintf(stdout, "  rehearse    make failover (a switchover), or kill -9 the primary's postmaster and its Patroni\n")
	fmt.Fprintf(stdout, "  logs        %s\n", logDir)
	fmt.Fprintf(stdout, "  Press Ctrl-C to stop everything.\n\n")
	<-ctx.Done()
	fmt.Fprintf(stdout, "\n  stopping ...\n")
	return nil
}
