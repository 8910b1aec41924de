package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/shop/tools/replicaset"
)

const benchSecret = "bench-secret-bench-secret-bench-secret-0123"

// passwordHash is every loaded user's password hash: well-formed, of no password anyone
// knows (the users get tokens signed directly and never log in).
const passwordHash = //nolint:gosec // a hash of nothing, not a credential
"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGk"

// instance is a running process of a service (or of the baselines): its pid and where it
// listens (debug, the pprof port, and metrics only when known).
type instance struct {
	pid                        int
	http, grpc, debug, metrics string
}

// proc is a service or baseline process the benchmark started itself.
type proc struct {
	instance
	name  string
	cmd   *exec.Cmd
	ready time.Duration
}

// start runs bin with env, its servers on port 0, and waits until it is ready: its REST port
// answers /readyz with 200 and its gRPC port a health check (and, when wantDebug, its debug
// port serves the profiles and its metrics port /metrics). It learns the ports from the process itself (listening), so that
// no port is chosen for it in advance, found free and then taken by another process.
func start(name, bin string, args, env []string, wantDebug bool) (*proc, error) {
	cmd := exec.CommandContext(context.Background(), bin, args...) //nolint:gosec // our own freshly built binaries
	cmd.Env = append(os.Environ(), env...)
	logFile, err := os.CreateTemp("", "bench-"+name+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, instance: instance{pid: cmd.Process.Pid}}
	for time.Since(began) < 30*time.Second {
		addrs, err := listening(cmd.Process.Pid)
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("%s: %w; log in %s", name, err, logFile.Name())
		}
		for _, addr := range addrs {
			switch addr {
			case p.http, p.grpc, p.debug, p.metrics:
				continue
			}
			switch {
			case answers(addr, "/readyz"):
				p.http = addr
			case answers(addr, "/debug/pprof/cmdline"):
				p.debug = addr
			case answers(addr, "/metrics"):
				p.metrics = addr
			case servesGRPC(addr):
				p.grpc = addr
			}
		}
		if p.http != "" && p.grpc != "" && (p.debug != "" && p.metrics != "" || !wantDebug) {
			p.ready = time.Since(began)
			return p, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready after 30s; log in %s", name, logFile.Name())
}

// listening returns the IPv4 TCP addresses process pid listens on.
func listening(pid int) ([]string, error) {
	sockets, err := replicaset.Sockets(pid)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, s := range sockets {
		if s.State == replicaset.TCPListen {
			addrs = append(addrs, s.Local.String())
		}
	}
	return addrs, nil
}

// answers reports whether an HTTP server at addr answers GET path with 200.
func answers(addr, path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// servesGRPC reports whether a gRPC server at addr answers a health check.
func servesGRPC(addr string) bool {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// resetPeakRSS makes the kernel restart the process's peak resident set measurement.
func (p instance) resetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid), []byte("5"), 0o600)
}

// peakRSS is the process's peak resident set size (VmHWM) in MiB.
func (p instance) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// database is a throwaway PostgreSQL database.
type database struct {
	admin, name, dsn string
}

func createDatabase(ctx context.Context, admin, prefix string) (*database, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to %s (set TEST_DATABASE_URL, or run `make db`): %w", redact(admin), err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, err
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return &database{admin: admin, name: name, dsn: u.String()}, nil
}

func (d *database) drop(ctx context.Context) {
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return
	}
	defer func() { _ = conn.Close(ctx) }()
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(DSN)"
	}
	return u.Redacted()
}

// dataset is what the scenarios use: the users' tokens and the catalog.
type dataset struct {
	userIDs  []string
	tokens   []string
	products []string
}

// loadData inserts users with live sessions (and signs their tokens), a catalog of 20
// products, and a cart of 10 lines for each user, with COPY.
func loadData(ctx context.Context, customersDSN, cartDSN string, users int) (*dataset, error) {
	now := time.Now().UTC()
	ds := &dataset{}
	userRows := make([][]any, users)
	sessRows := make([][]any, users)
	for i := range users {
		id := uuid.Must(uuid.NewV7()).String()
		jti := uuid.NewString()
		userRows[i] = []any{id, fmt.Sprintf("bench%d@example.com", i), passwordHash, "Bench", "User", i == 0, now, now}
		sessRows[i] = []any{jti, id, now.Add(24 * time.Hour), now}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Issuer: "customers", Subject: id, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(24 * time.Hour)),
		}).SignedString([]byte(benchSecret))
		if err != nil {
			return nil, err
		}
		ds.userIDs = append(ds.userIDs, id)
		ds.tokens = append(ds.tokens, tok)
	}
	cc, err := pgx.Connect(ctx, customersDSN)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cc.Close(ctx) }()
	if _, err := cc.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "password_hash", "first_name", "last_name", "is_admin", "created_at", "updated_at"}, pgx.CopyFromRows(userRows)); err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	if _, err := cc.CopyFrom(ctx, pgx.Identifier{"sessions"}, []string{"id", "user_id", "expires_at", "created_at"}, pgx.CopyFromRows(sessRows)); err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	if _, err := cc.Exec(ctx, "ANALYZE"); err != nil {
		return nil, err
	}

	kc, err := pgx.Connect(ctx, cartDSN)
	if err != nil {
		return nil, err
	}
	defer func() { _ = kc.Close(ctx) }()
	var productRows [][]any
	for i := range 20 {
		id := uuid.Must(uuid.NewV7()).String()
		ds.products = append(ds.products, id)
		productRows = append(productRows, []any{id, fmt.Sprintf("Product %02d", i), "A product for the benchmark.", int64(100 + i*137), "USD", now, now})
	}
	if _, err := kc.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"id", "name", "description", "price_cents", "currency_code", "created_at", "updated_at"}, pgx.CopyFromRows(productRows)); err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	rows := make([][]any, 0, users*10)
	for _, u := range ds.userIDs {
		for j := range 10 {
			rows = append(rows, []any{u, ds.products[j], int32(1 + j%3), now, now})
		}
	}
	if _, err := kc.CopyFrom(ctx, pgx.Identifier{"cart_items"}, []string{"user_id", "product_id", "quantity", "created_at", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("load cart lines: %w", err)
	}
	if _, err := kc.Exec(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	return ds, nil
}

// clientCalls is the number of gRPC calls the process has made as a client (the sum of its
// grpc_client_handled_total series), or -1 when its metrics cannot be read.
func (p instance) clientCalls() float64 {
	if p.metrics == "" {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metrics+"/metrics", nil)
	if err != nil {
		return -1
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return -1
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "grpc_client_handled_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return -1
		}
		sum += v
	}
	return sum
}
