package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const benchSecret = "bench-secret-bench-secret-bench-secret-0123"

// proc is a started service or baseline process.
type proc struct {
	name  string
	cmd   *exec.Cmd
	ready time.Duration
}

// start runs bin with env and waits until readyURL answers 200.
func start(name, bin string, args []string, env []string, readyURL string) (*proc, error) {
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
	p := &proc{name: name, cmd: cmd}
	for time.Since(began) < 30*time.Second {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, readyURL, nil)
		if err != nil {
			return nil, err
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				p.ready = time.Since(began)
				return p, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready after 30s; log in %s", name, logFile.Name())
}

func (p *proc) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

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
func (p *proc) resetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0o600)
}

// peakRSS is the process's peak resident set size (VmHWM) in MiB.
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
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

func freeAddr() string {
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = lis.Close() }()
	return lis.Addr().String()
}

// build compiles both services into dir from the repository at root.
func build(root, dir string) error {
	for _, svc := range []string{"customers-svc", "cart-svc"} {
		cmd := exec.CommandContext(context.Background(), "go", "build", "-trimpath", "-o", filepath.Join(dir, svc), "./cmd/"+svc) //nolint:gosec // fixed service names
		cmd.Dir = filepath.Join(root, svc)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", svc, err, out)
		}
	}
	return nil
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
		userRows[i] = []any{id, fmt.Sprintf("bench%d@example.com", i), "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGk", "Bench", "User", i == 0, now, now}
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
