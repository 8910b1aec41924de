// Command bench measures the services under load, against no-op baselines measured in the same
// run (`make bench`, `make bench-smoke`). It builds both services, starts them on throwaway
// PostgreSQL databases, loads users with live tokens and carts, runs each scenario from this
// process over loopback for a fixed time with a fixed number of connections, and prints
// requests/s, p50, p99, errors, the ratio to the matching baseline and each service's peak RSS.
// See docs/performance.md for the numbers and what they mean.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

type options struct {
	root       string
	duration   time.Duration
	workers    int
	users      int
	scaleUsers int
	smoke      bool
	admin      string
	profile    string
	tracing    bool
}

func main() {
	baseline := flag.Bool("serve-baseline", false, "internal: serve the baselines")
	var o options
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each scenario")
	flag.IntVar(&o.workers, "connections", 32, "concurrent requests (and HTTP connections)")
	flag.IntVar(&o.users, "users", 1000, "users (with tokens and 10-line carts) of the small-data run")
	flag.IntVar(&o.scaleUsers, "scale-users", 100000, "users of the scale run; 0 skips it")
	flag.BoolVar(&o.smoke, "smoke", false, "fail (exit 1) if any request failed")
	flag.StringVar(&o.profile, "profile", "", "write CPU and allocation profiles of both services during each scenario into this folder")
	flag.BoolVar(&o.tracing, "tracing", false, "trace every request (OTEL_TRACES_SAMPLER=always_on) and export the spans with OTLP/HTTP to a collector in this process that counts them")
	flag.Parse()
	if *baseline {
		if err := serveBaseline(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	o.admin = os.Getenv("TEST_DATABASE_URL")
	if o.admin == "" {
		o.admin = "postgres://shop:shop@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// row is one measured scenario.
type row struct {
	name, baseline        string
	res                   result
	customersRSS, cartRSS float64
	cpu                   cpuSplit
	// base is the scenario's baseline, measured in turns with it.
	base result
	// sent are the requests sent to the services, warm-up included, and exported what the
	// collector received meanwhile (with -tracing).
	sent     int
	exported exported
	// customersCalls are cart's calls to customers while the scenario was measured (-1 when
	// its metrics could not be read).
	customersCalls float64
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	fmt.Fprintln(os.Stderr, "building the services ...")
	if err := build(o.root, dir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	base, err := start("baseline", self, []string{"-serve-baseline"}, nil, false)
	if err != nil {
		return err
	}
	defer base.stop()

	var col *collector
	tracing := ""
	if o.tracing {
		if col, err = startCollector(); err != nil {
			return err
		}
		defer col.stop()
		tracing = ", tracing on"
		fmt.Printf("Tracing on: every request sampled (OTEL_TRACES_SAMPLER=always_on), its spans exported with OTLP/HTTP protobuf to %s/v1/traces, a collector in the load generator's process that counts them.\n", col.url)
	}

	small, err := runData(o, dir, o.users, base, col)
	if err != nil {
		return err
	}
	printRows(fmt.Sprintf("%d users, %d-line carts%s", o.users, 10, tracing), small)
	failed := errorsIn(small)
	if o.scaleUsers > 0 {
		scale, err := runData(o, dir, o.scaleUsers, base, col)
		if err != nil {
			return err
		}
		printRows(fmt.Sprintf("%d users, %d-line carts%s", o.scaleUsers, 10, tracing), scale)
		printScale(small, scale)
		failed += errorsIn(scale)
	}
	if col != nil {
		// The services have stopped, and flushed the spans they still held.
		got := col.received()
		fmt.Printf("\nThe collector received %v in all (%d malformed).\n", got, got.Malformed)
		if o.smoke && (got.Spans == 0 || got.Malformed > 0) {
			return fmt.Errorf("tracing on, but the collector received %v, %d malformed", got, got.Malformed)
		}
	}
	if o.smoke && failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

func errorsIn(rows []row) int {
	n := 0
	for _, r := range rows {
		n += r.res.Errors
	}
	return n
}

// runData starts both services on fresh databases holding users users and runs every scenario
// and baseline; their spans go to col when it is not nil.
func runData(o options, dir string, users int, base *proc, col *collector) ([]row, error) {
	ctx := context.Background()
	cdb, err := createDatabase(ctx, o.admin, "bench_customers")
	if err != nil {
		return nil, err
	}
	defer cdb.drop(ctx)
	kdb, err := createDatabase(ctx, o.admin, "bench_cart")
	if err != nil {
		return nil, err
	}
	defer kdb.drop(ctx)

	// Every server on a port of the loopback interface the system chooses; start learns which.
	// GOMEMLIMIT is the Go runtime's soft memory limit, the setting a container deployment
	// uses too (docker-compose.yaml): it makes the GC work harder near the limit instead of
	// letting the heap double.
	common := []string{"APP_ENV=development", "LOG_LEVEL=warn", "LOG_FORMAT=json", "GOMEMLIMIT=48MiB"}
	if col != nil {
		common = append(common, tracingEnv(col.url)...)
	} else {
		common = append(common, tracingEnv("")...)
	}
	for _, svc := range []string{"CUSTOMERS", "CART"} {
		for _, addr := range []string{"HTTP_ADDR", "GRPC_ADDR", "DEBUG_ADDR", "METRICS_ADDR"} {
			common = append(common, svc+"_"+addr+"=127.0.0.1:0")
		}
	}
	customers, err := start("customers", dir+"/customers-svc", nil, append(common,
		"CUSTOMERS_DATABASE_URL="+cdb.dsn, "CUSTOMERS_JWT_SECRET="+benchSecret, "CUSTOMERS_DEMO_DATA=false"), true)
	if err != nil {
		return nil, err
	}
	defer customers.stop()
	cart, err := start("cart", dir+"/cart-svc", nil, append(common,
		"CART_DATABASE_URL="+kdb.dsn, "CART_CUSTOMERS_ADDR="+customers.grpc, "CART_DEMO_DATA=false"), true)
	if err != nil {
		return nil, err
	}
	defer cart.stop()
	fmt.Fprintf(os.Stderr, "ready on PostgreSQL in %v (customers) and %v (cart); loading %d users ...\n",
		customers.ready.Round(time.Millisecond), cart.ready.Round(time.Millisecond), users)
	loadStart := time.Now()
	ds, err := loadData(ctx, cdb.dsn, kdb.dsn, users)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "loaded in %v\n", time.Since(loadStart).Round(time.Millisecond))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, MaxConnsPerHost: o.workers, DisableCompression: true}}
	get := func(url string, token func(n int) string) func(context.Context, int) bool {
		return func(ctx context.Context, n int) bool {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if token != nil {
				req.Header.Set("Authorization", "Bearer "+token(n))
			}
			return do(client, req)
		}
	}
	tokenOf := func(n int) string { return ds.tokens[n%len(ds.tokens)] }
	conns := func(addr string) []*grpc.ClientConn {
		var cs []*grpc.ClientConn
		for range 4 {
			c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				panic(err)
			}
			cs = append(cs, c)
		}
		return cs
	}
	cartConns, customersConns, baseConns := conns(cart.grpc), conns(customers.grpc), conns(base.grpc)

	type scenario struct {
		name, baseline string
		call           func(context.Context, int) bool
	}
	scenarios := []scenario{
		{"baseline: HTTP + 2 gRPC calls", "", get("http://"+base.http+"/twohop", nil)},
		{"baseline: gRPC no-op unary", "", func(ctx context.Context, n int) bool {
			_, err := healthpb.NewHealthClient(baseConns[n%4]).Check(ctx, &healthpb.HealthCheckRequest{})
			return err == nil
		}},
		{"GET /api/v1/products", "baseline: HTTP + 2 gRPC calls", get("http://"+cart.http+"/api/v1/products", nil)},
		{"GET /api/v1/carts/me", "baseline: HTTP + 2 gRPC calls", get("http://"+cart.http+"/api/v1/carts/me", tokenOf)},
		{"POST /api/v1/carts/me/items", "baseline: HTTP + 2 gRPC calls", func(ctx context.Context, n int) bool {
			body := fmt.Sprintf(`{"product_id":%q,"quantity":1}`, ds.products[10+n%10])
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+cart.http+"/api/v1/carts/me/items", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tokenOf(n))
			return do(client, req)
		}},
		{"gRPC cart.v1 GetCart", "baseline: gRPC no-op unary", func(ctx context.Context, n int) bool {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokenOf(n))
			_, err := cartv1.NewCartServiceClient(cartConns[n%4]).GetCart(ctx, &cartv1.GetCartRequest{UserId: "me"})
			return err == nil
		}},
		{"gRPC customers.v1 ValidateToken", "baseline: gRPC no-op unary", func(ctx context.Context, n int) bool {
			_, err := customersv1.NewAuthServiceClient(customersConns[n%4]).ValidateToken(ctx, &customersv1.ValidateTokenRequest{Token: tokenOf(n)})
			return err == nil
		}},
	}
	cpu := cpuSampler{customers: customers.pid(), cart: cart.pid(), baseline: base.pid()}
	byName := map[string]scenario{}
	for _, s := range scenarios {
		byName[s.name] = s
	}
	var rows []row
	for _, s := range scenarios {
		fmt.Fprintf(os.Stderr, "  %s ...\n", s.name)
		customers.resetPeakRSS()
		cart.resetPeakRSS()
		var exportedBefore exported
		if col != nil {
			exportedBefore = col.received()
		}
		// A short warm-up fills connection pools and caches before measuring.
		warm := load(min(time.Second, o.duration/4), o.workers, s.call)
		done := make(chan struct{})
		if o.profile != "" && s.baseline != "" {
			go func() {
				defer close(done)
				profile(o.profile, fmt.Sprintf("%d-%s", users, s.name), map[string]string{"customers": customers.debug, "cart": cart.debug}, 2*o.duration)
			}()
		} else {
			close(done)
		}
		// The scenario and its baseline take turns in short slices, so that both are measured
		// over the same stretch of time: the machine's speed drifts by a third within a run,
		// and a ratio to a baseline measured minutes earlier swings as much.
		var res, base result
		var used cpuSplit
		callsBefore := cart.clientCalls()
		turns := 1
		if s.baseline != "" {
			turns = max(1, int(o.duration/(2*time.Second)))
		}
		for range turns {
			if s.baseline != "" {
				base = base.merge(load(o.duration/time.Duration(turns), o.workers, byName[s.baseline].call))
			}
			before := cpu.read()
			res = res.merge(load(o.duration/time.Duration(turns), o.workers, s.call))
			used = used.add(cpu.read().sub(before))
		}
		<-done
		r := row{name: s.name, baseline: s.baseline, res: res, customersRSS: customers.peakRSS(), cartRSS: cart.peakRSS(), cpu: used, base: base, customersCalls: -1}
		if callsAfter := cart.clientCalls(); callsBefore >= 0 && callsAfter >= 0 {
			r.customersCalls = callsAfter - callsBefore
		}
		if col != nil {
			r.sent = warm.Requests + res.Requests
			r.exported = col.received().sub(exportedBefore)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// do sends req and reports whether it answered 2xx, reading the body so the connection is
// reused.
func do(c *http.Client, req *http.Request) bool {
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode/100 == 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

func printRows(title string, rows []row) {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "| scenario\t| req/s\t| p50 ms\t| p99 ms\t| errors\t| baseline req/s, measured in turns with it\t| of baseline req/s\t| customers peak RSS MiB\t| cart peak RSS MiB\t|\n")
	fmt.Fprintf(w, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|\n")
	for _, r := range rows {
		base, ratio := "-", "-"
		if r.base.RPS() > 0 {
			base = fmt.Sprintf("%.0f", r.base.RPS())
			ratio = fmt.Sprintf("%.0f%%", 100*r.res.RPS()/r.base.RPS())
		}
		fmt.Fprintf(w, "| %s\t| %.0f\t| %s\t| %s\t| %d\t| %s\t| %s\t| %.1f\t| %.1f\t|\n",
			r.name, r.res.RPS(), ms(r.res.P50), ms(r.res.P99), r.res.Errors, base, ratio, r.customersRSS, r.cartRSS)
	}
	_ = w.Flush()
	fmt.Printf("\n### %s\n\n%s", title, buf.String())

	// Where the CPU went: each process's CPU time over the scenario, per request.
	buf.Reset()
	w = tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "| scenario\t| load generator\t| baseline\t| cart\t| customers\t| PostgreSQL\t| total µs CPU per request\t|\n")
	fmt.Fprintf(w, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|\n")
	for _, r := range rows {
		per := func(sec float64) float64 {
			if r.res.Requests == 0 {
				return 0
			}
			return sec * 1e6 / float64(r.res.Requests)
		}
		c := r.cpu
		fmt.Fprintf(w, "| %s\t| %.0f\t| %.0f\t| %.0f\t| %.0f\t| %.0f\t| %.0f\t|\n", r.name, per(c.Load), per(c.Baseline),
			per(c.Cart), per(c.Customers), per(c.Postgres), per(c.Load+c.Baseline+c.Cart+c.Customers+c.Postgres))
	}
	_ = w.Flush()
	fmt.Printf("\nCPU per request, µs (%s)\n\n%s", title, buf.String())

	// How many calls cart made to customers per request (grpc_client_handled_total on cart's
	// metrics port, before and after the measured turns): below 1 when validations coalesce.
	buf.Reset()
	w = tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "| scenario\t| requests\t| cart → customers calls\t| calls per request\t|\n")
	fmt.Fprintf(w, "|---\t|---\t|---\t|---\t|\n")
	for _, r := range rows {
		if r.baseline == "" || r.res.Requests == 0 || r.customersCalls < 0 {
			continue
		}
		fmt.Fprintf(w, "| %s\t| %d\t| %.0f\t| %.3f\t|\n", r.name, r.res.Requests, r.customersCalls, r.customersCalls/float64(r.res.Requests))
	}
	_ = w.Flush()
	fmt.Printf("\ncart → customers calls per request (%s)\n\n%s", title, buf.String())

	// What the collector received while each scenario ran: the exporter sends a batch when 512
	// spans are waiting or 5 s have passed, so a few hundred of one scenario's spans may be
	// counted with the next; fewer spans per request than a request makes means spans were
	// dropped (the exporter's queue holds 2048).
	if !slices.ContainsFunc(rows, func(r row) bool { return r.sent > 0 }) {
		return
	}
	buf.Reset()
	w = tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "| scenario\t| requests, warm-up included\t| export requests\t| MiB exported\t| spans\t| spans per request\t| bytes per span\t|\n")
	fmt.Fprintf(w, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|\n")
	for _, r := range rows {
		if r.baseline == "" {
			continue
		}
		e := r.exported
		perSpan := 0.0
		if e.Spans > 0 {
			perSpan = float64(e.Bytes) / float64(e.Spans)
		}
		fmt.Fprintf(w, "| %s\t| %d\t| %d\t| %.1f\t| %d\t| %.2f\t| %.0f\t|\n", r.name, r.sent, e.Requests,
			float64(e.Bytes)/(1<<20), e.Spans, float64(e.Spans)/float64(max(1, r.sent)), perSpan)
	}
	_ = w.Flush()
	fmt.Printf("\nSpans exported during each scenario (%s)\n\n%s", title, buf.String())
}

func printScale(small, scale []row) {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "| scenario\t| p50 small ms\t| p50 scale ms\t| scale/small p50\t| same, over the baseline's own drift\t| scale/small req/s\t|\n|---\t|---\t|---\t|---\t|---\t|---\t|\n")
	for i, s := range small {
		if s.baseline == "" {
			continue
		}
		l := scale[i]
		ratio := float64(l.res.P50) / float64(s.res.P50)
		// The machine's speed drifts between the two runs; the baselines measured next to the
		// scenario in each run measure the drift.
		drift := float64(l.base.P50) / float64(s.base.P50)
		fmt.Fprintf(w, "| %s\t| %s\t| %s\t| %.2fx\t| %.2fx\t| %.2fx\t|\n", s.name, ms(s.res.P50), ms(l.res.P50),
			ratio, ratio/drift, l.res.RPS()/s.res.RPS())
	}
	_ = w.Flush()
	fmt.Printf("\n### Scale run against the small run\n\n%s", buf.String())
}

// profile saves CPU and allocation profiles of the services, taken while a scenario runs.
func profile(dir, scenario string, debug map[string]string, d time.Duration) {
	_ = os.MkdirAll(dir, 0o750)
	name := strings.NewReplacer("/", "_", " ", "_", ".", "_").Replace(scenario)
	seconds := max(1, int(d.Seconds())-1)
	for svc, addr := range debug {
		for _, kind := range []string{"profile", "allocs"} {
			go func() {
				url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, seconds)
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer func() { _ = res.Body.Close() }()
				suffix := map[string]string{"profile": "", "allocs": "-allocs"}[kind]
				f, err := os.Create(fmt.Sprintf("%s/%s-%s%s.pprof", dir, name, svc, suffix))
				if err != nil {
					return
				}
				defer func() { _ = f.Close() }()
				_, _ = io.Copy(f, res.Body)
			}()
		}
	}
	time.Sleep(d)
}
