// Command bench measures the services under load, against no-op baselines measured in the same
// run (`make bench`, `make bench-smoke`). It builds both services, starts them on throwaway
// PostgreSQL databases, loads users with live tokens and carts, runs each scenario from this
// process over loopback for a fixed time with a fixed number of connections, and prints
// requests/s, p50, p99, errors, the ratio to the matching baseline and each service's peak RSS.
// Then, on SQLite and on PostgreSQL, it deletes users under cart load and measures how long
// each erasure takes to reach cart (runErasure). See docs/performance.md for the numbers and what they mean.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
	"github.com/acme/shop/tools/replicaset"
)

type options struct {
	root       string
	duration   time.Duration
	workers    int
	users      int
	scaleUsers int
	erasure    int
	smoke      bool
	admin      string
	profile    string
	tracing    bool
	replicas   bool
	only       *regexp.Regexp
}

func main() {
	baseline := flag.Bool("serve-baseline", false, "internal: serve the baselines")
	var o options
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each scenario")
	flag.IntVar(&o.workers, "connections", 32, "concurrent requests (and HTTP connections)")
	flag.IntVar(&o.users, "users", 1000, "users (with tokens and 10-line carts) of the small-data run; 0 skips it, the scale run and the replica set")
	flag.IntVar(&o.scaleUsers, "scale-users", 100000, "users of the scale run; 0 skips it")
	flag.IntVar(&o.erasure, "erase-users", 1000, "users deleted under cart load, on SQLite and on PostgreSQL, to measure each erasure's lag; 0 skips it")
	flag.BoolVar(&o.smoke, "smoke", false, "fail (exit 1) if any request failed")
	flag.StringVar(&o.profile, "profile", "", "write CPU and allocation profiles of both services during each scenario into this folder")
	flag.BoolVar(&o.replicas, "replicas", false, "also run every scenario on small data against the replica set of `make run-replicas` (two customers and two cart replicas) and compare")
	flag.BoolVar(&o.tracing, "tracing", false, "trace every request (OTEL_TRACES_SAMPLER=always_on) and export the spans with OTLP/HTTP to a collector in this process that counts them")
	only := flag.String("only", "", "run only the scenarios whose name matches this regular expression (each still with its baseline, measured in turns with it); the erasure runs if \"erasure\" matches")
	flag.Parse()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -only:", err)
			os.Exit(2)
		}
		o.only = re
	}
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
	if err := replicaset.Build(context.Background(), o.root, dir); err != nil {
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

	// Small data first: the scale run and the replica set are compared with it.
	var passes []pass
	if o.users > 0 {
		passes = append(passes, pass{users: o.users})
		if o.scaleUsers > 0 {
			passes = append(passes, pass{users: o.scaleUsers, compare: printScale})
		}
		if o.replicas {
			passes = append(passes, pass{users: o.users, replicas: true, title: ", replica set (2 customers, 2 cart)", compare: printReplicas})
		}
	}
	var small []row
	failed := 0
	for _, p := range passes {
		rows, err := runData(o, dir, p.users, base, col, p.replicas)
		if err != nil {
			return err
		}
		printRows(fmt.Sprintf("%d users, %d-line carts%s%s", p.users, 10, p.title, tracing), rows)
		if p.compare == nil {
			small = rows
		} else {
			p.compare(small, rows)
		}
		failed += errorsIn(rows)
	}
	if o.erasure > 0 && (o.only == nil || o.only.MatchString("erasure")) {
		var rs []erasureResult
		for _, db := range []string{"SQLite", "PostgreSQL"} {
			r, err := runErasure(o, dir, db, o.erasure)
			if err != nil {
				return fmt.Errorf("erasure on %s: %w", db, err)
			}
			rs = append(rs, r)
			failed += r.cart.Errors
			if r.linesLeft > 0 {
				return fmt.Errorf("erasure on %s: %d cart lines of deleted users left", db, r.linesLeft)
			}
		}
		printErasure(rs)
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

// pass is one run of every scenario: on how many users, on single instances or the replica
// set, and how its table is compared with the small-data one (nil: it is the small-data one).
type pass struct {
	users    int
	replicas bool
	title    string
	compare  func(small, rows []row)
}

func errorsIn(rows []row) int {
	n := 0
	for _, r := range rows {
		n += r.res.Errors
	}
	return n
}

// runData starts both services on fresh databases holding users users, one process each or,
// with replicas, the replica set of `make run-replicas`, and runs every scenario and baseline;
// their spans go to col when it is not nil.
func runData(o options, dir string, users int, base *proc, col *collector, replicas bool) ([]row, error) {
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

	// GOMEMLIMIT is the Go runtime's soft memory limit, the setting a container deployment
	// uses too (docker-compose.yaml): it makes the GC work harder near the limit instead of
	// letting the heap double.
	env := map[string]string{"APP_ENV": "development", "LOG_LEVEL": "warn", "LOG_FORMAT": "json", "GOMEMLIMIT": "48MiB",
		"CUSTOMERS_JWT_SECRET": benchSecret, "CUSTOMERS_DEMO_DATA": "false", "CART_DEMO_DATA": "false",
		// The load adds to carts far faster than a shopper: the write limit still counts every
		// add (its cost is measured) but never refuses one.
		"CART_WRITE_LIMIT_PER_USER": "1000000"}
	url := ""
	if col != nil {
		url = col.url
	}
	maps.Copy(env, tracingEnv(url))
	var d *deployment
	if replicas {
		d, err = startReplicas(ctx, dir, env, cdb.dsn, kdb.dsn)
	} else {
		d, err = startSingle(dir, env, cdb.dsn, kdb.dsn)
	}
	if err != nil {
		return nil, err
	}
	defer d.stop()
	fmt.Fprintf(os.Stderr, "ready on PostgreSQL in %s; loading %d users ...\n", d.ready, users)
	loadStart := time.Now()
	ds, err := loadData(ctx, cdb.dsn, kdb.dsn, users)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "loaded in %v\n", time.Since(loadStart).Round(time.Millisecond))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, MaxConnsPerHost: o.workers, DisableCompression: true}}
	// Requests and connections go round-robin over the replicas, as a load balancer sends them.
	cartURL := func(n int, path string) string { return "http://" + d.cart[n%len(d.cart)].http + path }
	get := func(path string, token func(n int) string) func(context.Context, int) bool {
		return func(ctx context.Context, n int) bool {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cartURL(n, path), nil)
			if token != nil {
				req.Header.Set("Authorization", "Bearer "+token(n))
			}
			return do(client, req)
		}
	}
	tokenOf := func(n int) string { return ds.tokens[n%len(ds.tokens)] }
	conns := func(is []instance) []*grpc.ClientConn {
		var cs []*grpc.ClientConn
		for i := range 4 {
			c, err := grpc.NewClient(is[i%len(is)].grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				panic(err)
			}
			cs = append(cs, c)
		}
		return cs
	}
	cartConns, customersConns, baseConns := conns(d.cart), conns(d.customers), conns([]instance{base.instance})

	type scenario struct {
		name, baseline string
		call           func(context.Context, int) bool
	}
	scenarios := []scenario{
		{"baseline: HTTP + 2 gRPC calls", "", func(ctx context.Context, _ int) bool {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+base.http+"/twohop", nil)
			return do(client, req)
		}},
		{"baseline: gRPC no-op unary", "", func(ctx context.Context, n int) bool {
			_, err := healthpb.NewHealthClient(baseConns[n%4]).Check(ctx, &healthpb.HealthCheckRequest{})
			return err == nil
		}},
		{"GET /api/v1/products", "baseline: HTTP + 2 gRPC calls", get("/api/v1/products", nil)},
		{"GET /api/v1/carts/me", "baseline: HTTP + 2 gRPC calls", get("/api/v1/carts/me", tokenOf)},
		{"POST /api/v1/carts/me/items", "baseline: HTTP + 2 gRPC calls", func(ctx context.Context, n int) bool {
			body := fmt.Sprintf(`{"product_id":%q,"quantity":1}`, ds.products[10+n%10])
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cartURL(n, "/api/v1/carts/me/items"), strings.NewReader(body))
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
		// The calls cart makes: at 32 concurrent requests one carries about ten tokens.
		{"gRPC customers.v1 ValidateTokens, 10 tokens", "baseline: gRPC no-op unary", func(ctx context.Context, n int) bool {
			tokens := make([]string, 10)
			for i := range tokens {
				tokens[i] = tokenOf(10*n + i)
			}
			res, err := customersv1.NewAuthServiceClient(customersConns[n%4]).ValidateTokens(ctx, &customersv1.ValidateTokensRequest{Tokens: tokens})
			return err == nil && len(res.GetResults()) == 10 && res.GetResults()[9].GetValid()
		}},
	}
	cpu := cpuSampler{customers: d.customers, cart: d.cart, baseline: base.instance}
	byName := map[string]scenario{}
	for _, s := range scenarios {
		byName[s.name] = s
	}
	if o.only != nil {
		scenarios = slices.DeleteFunc(scenarios, func(s scenario) bool { return !o.only.MatchString(s.name) })
	}
	var rows []row
	for _, s := range scenarios {
		fmt.Fprintf(os.Stderr, "  %s ...\n", s.name)
		for _, i := range append(slices.Clone(d.customers), d.cart...) {
			i.resetPeakRSS()
		}
		var exportedBefore exported
		if col != nil {
			exportedBefore = col.received()
		}
		// A short warm-up fills connection pools and caches before measuring.
		warm := load(min(time.Second, o.duration/4), o.workers, s.call)
		done := make(chan struct{})
		if o.profile != "" && s.baseline != "" && !replicas {
			go func() {
				defer close(done)
				profile(o.profile, fmt.Sprintf("%d-%s", users, s.name), map[string]string{"customers": d.customers[0].debug, "cart": d.cart[0].debug}, 2*o.duration)
			}()
		} else {
			close(done)
		}
		// The scenario and its baseline take turns in short slices, so that both are measured
		// over the same stretch of time: the machine's speed drifts by a third within a run,
		// and a ratio to a baseline measured minutes earlier swings as much.
		var res, base result
		var used cpuSplit
		callsBefore := clientCalls(d.cart)
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
		r := row{name: s.name, baseline: s.baseline, res: res, customersRSS: peakRSS(d.customers), cartRSS: peakRSS(d.cart), cpu: used, base: base, customersCalls: -1}
		if callsAfter := clientCalls(d.cart); callsBefore >= 0 && callsAfter >= 0 {
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

// printTable prints a Markdown table with its columns aligned, after a heading line.
func printTable(heading string, header []string, rows [][]string) {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	line := func(cells []string) {
		for _, c := range cells {
			fmt.Fprintf(w, "| %s\t", c)
		}
		fmt.Fprintln(w, "|")
	}
	line(header)
	fmt.Fprintln(w, strings.Repeat("|---\t", len(header))+"|")
	for _, r := range rows {
		line(r)
	}
	_ = w.Flush()
	fmt.Printf("\n%s\n\n%s", heading, buf.String())
}

// share is a scenario's requests per second as a share of its baseline's, "-" for a baseline.
func (r row) share() string {
	if !(r.base.RPS() > 0) { // a baseline has none: 0 requests in 0 s
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*r.res.RPS()/r.base.RPS())
}

// callsPerRequest is cart's calls to customers per request, "-" when unknown.
func (r row) callsPerRequest() string {
	if r.baseline == "" || r.res.Requests == 0 || r.customersCalls < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", r.customersCalls/float64(r.res.Requests))
}

func printRows(title string, rows []row) {
	var cells [][]string
	for _, r := range rows {
		base := "-"
		if r.share() != "-" {
			base = fmt.Sprintf("%.0f", r.base.RPS())
		}
		cells = append(cells, []string{r.name, fmt.Sprintf("%.0f", r.res.RPS()), ms(r.res.P50), ms(r.res.P99),
			strconv.Itoa(r.res.Errors), base, r.share(), fmt.Sprintf("%.1f", r.customersRSS), fmt.Sprintf("%.1f", r.cartRSS)})
	}
	printTable("### "+title, []string{"scenario", "req/s", "p50 ms", "p99 ms", "errors", "baseline req/s, measured in turns with it",
		"of baseline req/s", "customers peak RSS MiB", "cart peak RSS MiB"}, cells)

	// Where the CPU went: each process's CPU time over the scenario, per request.
	cells = nil
	for _, r := range rows {
		per := func(sec float64) string {
			if r.res.Requests == 0 {
				return "0"
			}
			return fmt.Sprintf("%.0f", sec*1e6/float64(r.res.Requests))
		}
		c := r.cpu
		cells = append(cells, []string{r.name, per(c.Load), per(c.Baseline), per(c.Cart), per(c.Customers), per(c.Postgres),
			per(c.Load + c.Baseline + c.Cart + c.Customers + c.Postgres)})
	}
	printTable(fmt.Sprintf("CPU per request, µs (%s)", title),
		[]string{"scenario", "load generator", "baseline", "cart", "customers", "PostgreSQL", "total µs CPU per request"}, cells)

	// How many calls cart made to customers per request (grpc_client_handled_total on cart's
	// metrics ports, before and after the measured turns): below 1 when validations coalesce.
	cells = nil
	for _, r := range rows {
		if calls := r.callsPerRequest(); calls != "-" {
			cells = append(cells, []string{r.name, strconv.Itoa(r.res.Requests), fmt.Sprintf("%.0f", r.customersCalls), calls})
		}
	}
	printTable(fmt.Sprintf("cart → customers calls per request (%s)", title),
		[]string{"scenario", "requests", "cart → customers calls", "calls per request"}, cells)

	// What the collector received while each scenario ran: the exporter sends a batch when 512
	// spans are waiting or 5 s have passed, so a few hundred of one scenario's spans may be
	// counted with the next; fewer spans per request than a request makes means spans were
	// dropped (the exporter's queue holds 2048).
	if !slices.ContainsFunc(rows, func(r row) bool { return r.sent > 0 }) {
		return
	}
	cells = nil
	for _, r := range rows {
		if r.baseline == "" {
			continue
		}
		e := r.exported
		perSpan := 0.0
		if e.Spans > 0 {
			perSpan = float64(e.Bytes) / float64(e.Spans)
		}
		cells = append(cells, []string{r.name, strconv.Itoa(r.sent), fmt.Sprint(e.Requests), fmt.Sprintf("%.1f", float64(e.Bytes)/(1<<20)),
			fmt.Sprint(e.Spans), fmt.Sprintf("%.2f", float64(e.Spans)/float64(max(1, r.sent))), fmt.Sprintf("%.0f", perSpan)})
	}
	printTable(fmt.Sprintf("Spans exported during each scenario (%s)", title),
		[]string{"scenario", "requests, warm-up included", "export requests", "MiB exported", "spans", "spans per request", "bytes per span"}, cells)
}

func printScale(small, scale []row) {
	var cells [][]string
	for i, s := range small {
		if s.baseline == "" {
			continue
		}
		l := scale[i]
		ratio := float64(l.res.P50) / float64(s.res.P50)
		// The machine's speed drifts between the two runs; the baselines measured next to the
		// scenario in each run measure the drift.
		drift := float64(l.base.P50) / float64(s.base.P50)
		cells = append(cells, []string{s.name, ms(s.res.P50), ms(l.res.P50), fmt.Sprintf("%.2fx", ratio),
			fmt.Sprintf("%.2fx", ratio/drift), fmt.Sprintf("%.2fx", l.res.RPS()/s.res.RPS())})
	}
	printTable("### Scale run against the small run", []string{"scenario", "p50 small ms", "p50 scale ms", "scale/small p50",
		"same, over the baseline's own drift", "scale/small req/s"}, cells)
}

// printReplicas compares the replica set with single instances, on the same data: the two
// runs measured their baselines at different times, so the shares are what compares.
func printReplicas(single, set []row) {
	var cells [][]string
	for i, s := range single {
		if s.baseline == "" {
			continue
		}
		r := set[i]
		cells = append(cells, []string{s.name, s.share(), r.share(), ms(s.res.P99), ms(r.res.P99),
			s.callsPerRequest(), r.callsPerRequest()})
	}
	printTable("### Replica set against single instances (same data)", []string{"scenario", "of baseline, single", "of baseline, replica set",
		"p99 ms, single", "p99 ms, replica set", "cart → customers calls per request, single", "same, replica set"}, cells)
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
