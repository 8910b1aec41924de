package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/acme/shop/tools/replicaset"
)

// deployment is the services under test: one process of each, or the replica set of `make
// run-replicas`.
type deployment struct {
	customers, cart []instance
	// ready says how long the start took.
	ready string
	stop  func()
}

// startSingle starts one customers and one cart process, every server of both on a port of
// the loopback interface the system chooses (start learns which), their pprof and metrics
// ports included.
func startSingle(dir string, env map[string]string, customersDSN, cartDSN string) (*deployment, error) {
	vars := maps.Clone(env)
	for _, svc := range []string{"CUSTOMERS", "CART"} {
		for _, addr := range []string{"HTTP_ADDR", "GRPC_ADDR", "DEBUG_ADDR", "METRICS_ADDR"} {
			vars[svc+"_"+addr] = "127.0.0.1:0"
		}
	}
	vars["CUSTOMERS_DATABASE_URL"] = customersDSN
	vars["CART_DATABASE_URL"] = cartDSN
	customers, err := start("customers", dir+"/customers-svc", nil, environ(vars), true)
	if err != nil {
		return nil, err
	}
	vars["CART_CUSTOMERS_ADDR"] = customers.grpc
	cart, err := start("cart", dir+"/cart-svc", nil, environ(vars), true)
	if err != nil {
		customers.stop()
		return nil, err
	}
	return &deployment{
		customers: []instance{customers.instance},
		cart:      []instance{cart.instance},
		ready: fmt.Sprintf("%v (customers) and %v (cart)",
			customers.ready.Round(time.Millisecond), cart.ready.Round(time.Millisecond)),
		stop: func() { cart.stop(); customers.stop() },
	}, nil
}

// startReplicas starts the replica set of `make run-replicas` (package replicaset: two
// customers and two cart replicas, cart finding customers through DNS), on loopback addresses
// and ports of its own. Its replicas have no pprof port; their logs go to one file.
func startReplicas(ctx context.Context, dir string, env map[string]string, customersDSN, cartDSN string) (*deployment, error) {
	logFile, err := os.CreateTemp("", "bench-replicas-*.log")
	if err != nil {
		return nil, err
	}
	cfg := replicaset.Config{
		Bin:          dir,
		CustomersDSN: customersDSN,
		CartDSN:      cartDSN,
		Env:          env,
		Output:       func(string) io.Writer { return logFile },
	}
	cfg.Isolate()
	began := time.Now()
	set, err := replicaset.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w; logs in %s", err, logFile.Name())
	}
	of := func(rs []*replicaset.Replica) []instance {
		var is []instance
		for _, r := range rs {
			is = append(is, instance{pid: r.PID(), http: r.HTTPAddr, grpc: r.GRPCAddr, metrics: r.MetricsAddr})
		}
		return is
	}
	return &deployment{
		customers: of(set.Customers()),
		cart:      of(set.Cart()),
		ready:     fmt.Sprintf("%v (%d customers and %d cart replicas, migrations included)", time.Since(began).Round(time.Millisecond), len(set.Customers()), len(set.Cart())),
		stop: func() {
			if err := set.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "bench: stopping the replica set: %v; logs in %s\n", err, logFile.Name())
			}
		},
	}, nil
}

// environ turns vars into the NAME=value form of exec.Cmd.Env, sorted.
func environ(vars map[string]string) []string {
	var env []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// peakRSS is the highest peak resident set size (VmHWM, MiB) among is: the target is per
// process.
func peakRSS(is []instance) float64 {
	peak := 0.0
	for _, i := range is {
		peak = max(peak, i.peakRSS())
	}
	return peak
}

// clientCalls sums clientCalls over is, or is -1 when any could not be read.
func clientCalls(is []instance) float64 {
	sum := 0.0
	for _, i := range is {
		n := i.clientCalls()
		if n < 0 {
			return -1
		}
		sum += n
	}
	return sum
}
