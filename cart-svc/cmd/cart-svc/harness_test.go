package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/config"
)

// testSecret is the customers signing secret in these tests, so that they can forge tokens.
const testSecret = "test-secret-test-secret-test-secret-0123"

const demoPassword = "testPass123"

// customersBin is the real customers service, built once by TestMain.
var customersBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cart-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	customersBin = filepath.Join(dir, "customers-svc")
	build := exec.Command("go", "build", "-o", customersBin, "./cmd/customers-svc")
	build.Dir = filepath.Join("..", "..", "..", "customers-svc")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build customers-svc:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// customers is a customers-svc process on its own database.
type customers struct {
	t   testing.TB
	env map[string]string
	cmd *exec.Cmd
	// exited is closed once the process has exited.
	exited chan struct{}
	// rest is the REST base URL of the process running now; grpc, the address of a proxy to
	// its gRPC port, stays the same when customers restarts.
	rest  string
	grpc  string
	proxy *servicetest.Proxy
	logs  *servicetest.LogBuffer
}

// startCustomers runs customers-svc until the test ends; extra adds environment variables.
func startCustomers(t testing.TB, dialect string, extra map[string]string) *customers {
	t.Helper()
	env := map[string]string{
		"APP_ENV":                               "development",
		"CUSTOMERS_HTTP_ADDR":                   "127.0.0.1:0",
		"CUSTOMERS_GRPC_ADDR":                   "127.0.0.1:0",
		"CUSTOMERS_METRICS_ADDR":                "127.0.0.1:0",
		"CUSTOMERS_SQLITE_PATH":                 filepath.Join(t.TempDir(), "customers.db"),
		"CUSTOMERS_JWT_SECRET":                  testSecret,
		"CUSTOMERS_LOGIN_MAX_FAILURES_PER_ADDR": "100000",
		"CUSTOMERS_REGISTER_MAX_PER_ADDR":       "100000",
	}
	if dialect == "postgres" {
		env["CUSTOMERS_DATABASE_URL"] = dbtest.PostgresDSN(t)
	}
	for k, v := range extra {
		env[k] = v
	}
	c := &customers{t: t, env: env, proxy: servicetest.NewProxy(t), logs: &servicetest.LogBuffer{}}
	c.grpc = c.proxy.Addr
	c.start()
	t.Cleanup(c.stop)
	return c
}

// start starts the process, on new ports; its gRPC clients reach it at the same address as
// before, as clients of a restarted service behind a fixed address do.
func (c *customers) start() {
	c.t.Helper()
	c.cmd = exec.Command(customersBin)
	c.cmd.Env = os.Environ()
	for k, v := range c.env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	// This start's own log too, in which to find the addresses it reports.
	logs := &servicetest.LogBuffer{}
	c.cmd.Stdout = io.MultiWriter(c.logs, logs)
	c.cmd.Stderr = c.cmd.Stdout
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	cmd, exited := c.cmd, make(chan struct{})
	c.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	rest, grpcAddr := servicetest.WaitServing(c.t, logs, exited)
	c.rest = rest
	c.proxy.Forward(grpcAddr)
	servicetest.WaitHealthy(c.t, c.rest+"/readyz", exited)
}

// stop sends SIGTERM and waits for the process to exit.
func (c *customers) stop() {
	if c.cmd == nil {
		return
	}
	c.proxy.Forward("")
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// login logs in over customers' REST API and returns the token.
func (c *customers) login(email, password string) string {
	c.t.Helper()
	return c.post("/api/v1/auth/login", http.StatusOK, "access_token", email, password)
}

// register creates a user at customers and returns its ID.
func (c *customers) register(email, password string) string {
	c.t.Helper()
	return c.post("/api/v1/users", http.StatusCreated, "id", email, password)
}

// shopper registers a new user, with the password shopperPass1, and logs in as it.
func (c *customers) shopper() (email, id, token string) {
	c.t.Helper()
	email = uniqueEmail()
	id = c.register(email, "shopperPass1")
	return email, id, c.login(email, "shopperPass1")
}

// post sends an email and a password to customers' REST API, and returns the string field key
// of the answer, which must have the code want.
func (c *customers) post(path string, want int, key, email, password string) string {
	c.t.Helper()
	res := servicetest.Do(c.t, http.MethodPost, c.rest+path, "", map[string]any{"email": email, "password": password})
	v, _ := res.JSON[key].(string)
	if res.Code != want || v == "" {
		c.t.Fatalf("POST %s as %s: %d %s", path, email, res.Code, res.Raw)
	}
	return v
}

// harness is one cart service started through run, on its own database, with clients.
type harness struct {
	t        testing.TB
	rest     string
	products cartv1.ProductServiceClient
	carts    cartv1.CartServiceClient
	logs     *servicetest.LogBuffer
	// metrics is the URL of cart's metrics.
	metrics string
	// svc is the running service.
	svc *servicetest.Service
}

// start runs cart on a fresh database of the dialect until the test ends, talking to customers
// at customersAddr; extra overrides environment variables. Cart need not be ready (customers
// may be out of its reach).
func start(t testing.TB, dialect, customersAddr string, extra map[string]string) *harness {
	t.Helper()
	return startSpec(t, spec, dialect, customersAddr, extra)
}

// startSpec is start with a spec of the test's own (a hook in its Build, say).
func startSpec(t testing.TB, s service.Spec[config.Config], dialect, customersAddr string, extra map[string]string) *harness {
	t.Helper()
	env := map[string]string{
		"CART_CUSTOMERS_ADDR":    customersAddr,
		"CART_CUSTOMERS_TIMEOUT": "1s",
		// Tests of other behaviour change one user's cart far faster than a shopper: the write
		// limit is lifted unless a test sets it (TestWriteLimitAcrossReplicas).
		"CART_WRITE_LIMIT_PER_USER": "1000000",
	}
	maps.Copy(env, extra)
	return harnessOf(t, servicetest.StartOn(t, s, dialect, env))
}

func harnessOf(t testing.TB, s *servicetest.Service) *harness {
	return &harness{
		t: t, rest: s.URL, logs: s.Logs, metrics: s.Metrics, svc: s,
		products: cartv1.NewProductServiceClient(s.Conn), carts: cartv1.NewCartServiceClient(s.Conn),
	}
}

// startShop runs customers on SQLite and cart on a fresh database of the dialect, talking to it.
func startShop(t testing.TB, dialect string) (*customers, *harness) {
	t.Helper()
	c := startCustomers(t, "sqlite", nil)
	return c, start(t, dialect, c.grpc, nil)
}

// doJSON sends one REST request with an optional bearer token and JSON body.
func doJSON(t testing.TB, method, url, token string, body any) servicetest.Response {
	t.Helper()
	return servicetest.Do(t, method, url, servicetest.Bearer(token), body)
}

// do sends a REST request to cart.
func (h *harness) do(method, path, token string, body any) servicetest.Response {
	h.t.Helper()
	return doJSON(h.t, method, h.rest+path, token, body)
}
