package replicaset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/poll"
)

// The services' binaries, built once for every test of the package (go build caches, but
// linking twice per test would still cost seconds).
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// servicesBin builds customers-svc and cart-svc from this repository into a temporary folder
// and returns it.
func servicesBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "replicaset-bin-"); buildErr != nil {
			return
		}
		buildErr = Build(context.Background(), root, binDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// connectionAge is customers' CUSTOMERS_GRPC_MAX_CONNECTION_AGE in the test: short, so that
// cart re-resolves customers' name often.
const connectionAge = 2 * time.Second

// reResolution bounds how long cart may take to reach a replica that joined the name's answer:
// grpc-go's dns resolver resolves again when a connection ends (every connectionAge at the
// latest), but no sooner than customersclient.MinResolutionInterval (5 s) after its previous
// resolution; plus slack for a busy machine.
const reResolution = 5*time.Second + 2*connectionAge + 10*time.Second

// restartDelay is the set's first backoff before it starts a replica that died again.
const restartDelay = 100 * time.Millisecond

// replicaTest is a running set of replicas and what the test knows about it.
type replicaTest struct {
	set    *Set
	logs   *logs
	tokens []string
	block  string
}

// TestReplicas runs two customers and two cart replicas on PostgreSQL as `make run-replicas`
// does, on a loopback block of its own (so that a running `make run-replicas` does not
// collide), and, under steady authenticated load through both cart replicas: kills a
// customers replica (Kill), kills another behind the set's back (SIGKILL) and waits for the
// set to start it again, restarts every customers and then every cart replica in turn, adds a
// third customers replica, and spreads failed logins over the customers replicas. No request
// of the load may fail. The steps run in order on the one set, each starting from where the
// previous one left it.
func TestReplicas(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("every address of 127.0.0.0/8 is loopback on Linux only")
	}
	customersDSN, cartDSN := dbtest.PostgresDSN(t), dbtest.PostgresDSN(t)
	bin := servicesBin(t)
	rt := &replicaTest{logs: newLogs()}
	cfg := Config{
		Bin:          bin,
		CustomersDSN: customersDSN,
		CartDSN:      cartDSN,
		NATSURL:      startNATS(t),
		Env: map[string]string{
			"CUSTOMERS_GRPC_MAX_CONNECTION_AGE": connectionAge.String(),
			// customers logs one line per call at info: the test counts validations in them.
			"LOG_LEVEL":  "info",
			"LOG_FORMAT": "text",
			// Few connections each: the load needs no more, and the PostgreSQL server is
			// shared with every other test.
			"CUSTOMERS_DB_MAX_CONNS": "4",
			"CART_DB_MAX_CONNS":      "4",
		},
		Output: rt.logs.writer,
		// Short, so that the test waits little for a replica that died to come back.
		Restart: Backoff{Initial: restartDelay, Max: 10 * restartDelay, Reset: time.Minute},
	}
	rt.block = cfg.Isolate()
	began := time.Now()
	set, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt.set = set
	t.Cleanup(func() {
		if err := set.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			rt.logs.dump(t)
		}
	})
	t.Logf("set of %d customers and %d cart replicas on %s0/24 ready after %v; cart dials %s",
		len(set.Customers()), len(set.Cart()), rt.block, time.Since(began).Round(time.Millisecond), set.CustomersTarget())
	for _, email := range []string{"admin1@email.com", "admin2@email.com", "nonadmin3@email.com", "nonadmin4@email.com"} {
		rt.tokens = append(rt.tokens, rt.login(t, set.Customers()[0], email))
	}

	t.Run("steady load", func(t *testing.T) {
		rt.underLoad(t, func(t *testing.T, l *load) { l.waitSent(t, 500) })
	})
	t.Run("SIGKILL a customers replica", func(t *testing.T) {
		rt.underLoad(t, func(t *testing.T, l *load) {
			c := set.Customers()[0]
			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
			l.waitSent(t, 300)
			rt.restart(t, c)
		})
	})
	t.Run("a customers replica that dies is restarted", func(t *testing.T) {
		rt.underLoad(t, func(t *testing.T, _ *load) {
			c := set.Customers()[1]
			pid, since := c.PID(), rt.logs.validations(c.Name)[0]
			// As the OOM killer or `kill -9` would, not through Kill: an exit nobody asked for.
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, func() error {
				select {
				case err := <-set.Exited():
					var exit *exec.ExitError
					if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL { //nolint:forcetypeassert // Linux only
						t.Fatalf("exit reported: %v, want %s killed", err, c.Name)
					}
					return nil
				default:
					return fmt.Errorf("no exit of %s (pid %d) reported", c.Name, pid)
				}
			})
			client := &http.Client{Timeout: time.Second}
			poll.Until(t, func() error {
				if now := c.PID(); now == 0 || now == pid {
					return fmt.Errorf("%s not started again (pid %d)", c.Name, now)
				}
				if !ready(t.Context(), client, c.URL()) {
					return fmt.Errorf("%s/readyz does not answer 200", c.URL())
				}
				return nil
			})
			rt.waitInService(t, c, since)
			log := rt.logs.text(restartLog)
			for _, want := range []string{c.Name + ": starting it again in " + restartDelay.String() + "\n", c.Name + ": restarted"} {
				if !strings.Contains(log, want) {
					t.Errorf("the set's log has no %q:\n%s", want, log)
				}
			}
			t.Logf("%s (pid %d) killed, restarted as pid %d", c.Name, pid, c.PID())
		})
	})
	t.Run("rolling restart of customers", func(t *testing.T) {
		rt.underLoad(t, func(_ *testing.T, _ *load) {
			for _, c := range set.Customers() {
				rt.stop(t, c)
				rt.restart(t, c)
			}
		})
	})
	t.Run("a new customers replica gets validations", func(t *testing.T) {
		rt.underLoad(t, func(t *testing.T, _ *load) {
			c, err := set.AddCustomers(t.Context(), rt.block+"13")
			if err != nil {
				t.Fatal(err)
			}
			joined := time.Now()
			poll.Until(t, func() error {
				if rt.logs.validations(c.Name)[0] == 0 {
					return errors.New(c.Name + " has answered no validation")
				}
				return nil
			})
			first := time.Since(joined)
			if first > reResolution {
				t.Errorf("%s's first validation came %v after it joined, want within %v", c.Name, first.Round(time.Millisecond), reResolution)
			}
			rt.waitInService(t, c, 0)
			t.Logf("%s joined the name's answer; its first validation came %v later, every cart replica had a connection to it %v later (connection age %v)",
				c.Name, first.Round(time.Millisecond), time.Since(joined).Round(time.Millisecond), connectionAge)
		})
	})
	t.Run("rolling restart of cart", func(t *testing.T) {
		rt.underLoad(t, func(t *testing.T, l *load) {
			for i, c := range set.Cart() {
				rt.stop(t, c)
				if err := c.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				// As a rolling update waits for the new pod to be available before it stops
				// the next: the balancer sends to it again and it answers.
				served := l.served(i)
				poll.Until(t, func() error {
					if got := l.served(i) - served; got < 50 {
						return fmt.Errorf("%s answered %d requests since its restart, want 50", c.Name, got)
					}
					return nil
				})
			}
		})
	})
	t.Run("a deleted user's cart is erased on every cart replica", func(t *testing.T) {
		admin := rt.tokens[0] // admin1
		res := rt.post(t, set.Customers()[0], "/api/v1/users", map[string]string{"email": "erased@email.com", "password": "testPass123"})
		var user struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(res.body, &user); res.code != http.StatusCreated || err != nil || user.ID == "" {
			t.Fatalf("register: %d %s", res.code, res.body)
		}
		token := rt.login(t, set.Customers()[1], "erased@email.com")
		item := map[string]any{"product_id": "00000000-0000-7000-8000-000000000101", "quantity": 2}
		if res := rt.do(t, set.Cart()[0], http.MethodPost, "/api/v1/carts/me/items", token, item); res.code != http.StatusOK {
			t.Fatalf("add to the cart: %d %s", res.code, res.body)
		}
		if res := rt.do(t, set.Customers()[1], http.MethodDelete, "/api/v1/users/"+user.ID, admin, nil); res.code != http.StatusNoContent {
			t.Fatalf("admin deletes the user: %d %s", res.code, res.body)
		}
		for _, c := range set.Cart() {
			poll.Until(t, func() error {
				if res := rt.do(t, c, http.MethodGet, "/api/v1/carts/"+user.ID, admin, nil); res.code != http.StatusNotFound {
					return fmt.Errorf("the deleted user's cart on %s: %d %s, want 404", c.Name, res.code, res.body)
				}
				return nil
			})
		}
	})
	t.Run("failed logins count on every replica", func(t *testing.T) {
		const email = "nonadmin4@email.com"
		cs := set.Customers()
		for i := range 5 {
			c := cs[i%2]
			if res := rt.post(t, c, "/api/v1/auth/login", map[string]string{"email": email, "password": "wrongPass123"}); res.code != http.StatusUnauthorized {
				t.Fatalf("failed login %d on %s: %d %s, want 401", i+1, c.Name, res.code, res.body)
			}
		}
		for _, c := range cs {
			res := rt.post(t, c, "/api/v1/auth/login", map[string]string{"email": email, "password": "wrongPass123"})
			if res.code != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
				t.Errorf("login after 5 failures spread over %s and %s, on %s: %d (Retry-After %q), want 429 with Retry-After",
					cs[0].Name, cs[1].Name, c.Name, res.code, res.header.Get("Retry-After"))
			}
		}
	})
	select {
	case err := <-set.Exited():
		t.Errorf("a replica exited on its own: %v", err)
	default:
	}
}

// underLoad runs action under steady load, then lets the load run on for a while, and fails
// the test if any request failed. It logs the requests sent and failed, by cart replica, and
// the validations each customers replica answered meanwhile.
func (rt *replicaTest) underLoad(t *testing.T, action func(t *testing.T, l *load)) {
	t.Helper()
	names := func() []string {
		var out []string
		for _, c := range rt.set.Customers() {
			out = append(out, c.Name)
		}
		return out
	}
	before := names()
	counts := rt.logs.validations(before...)
	began := time.Now()
	l := startLoad(t, rt.set.Cart(), rt.tokens)
	defer func() {
		res := l.finish()
		after := names()
		counts = append(counts, make([]int64, len(after)-len(before))...)
		var spread []string
		for i, n := range rt.logs.validations(after...) {
			spread = append(spread, fmt.Sprintf("%s %d", after[i], n-counts[i]))
		}
		var perCart []string
		for i, c := range rt.set.Cart() {
			perCart = append(perCart, fmt.Sprintf("%s %d", c.Name, res.perCart[i]))
		}
		t.Logf("%v: %d requests sent, %d failed (answered: %s); validations: %s",
			time.Since(began).Round(100*time.Millisecond), res.sent, res.failed, strings.Join(perCart, ", "), strings.Join(spread, ", "))
		if res.failed > 0 {
			t.Errorf("%d of %d requests failed; the first:\n%s", res.failed, res.sent, strings.Join(res.failures, "\n"))
		}
	}()
	l.waitSent(t, 100)
	action(t, l)
	l.waitSent(t, 200)
}

// stop stops a replica with SIGTERM and fails the test unless it shut down cleanly.
func (rt *replicaTest) stop(t *testing.T, r *Replica) {
	t.Helper()
	if err := r.Stop(); err != nil {
		t.Errorf("%s did not shut down cleanly: %v", r.Name, err)
	}
}

// restart starts a stopped customers replica again and waits until it is back in service.
func (rt *replicaTest) restart(t *testing.T, c *Replica) {
	t.Helper()
	since := rt.logs.validations(c.Name)[0]
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	rt.waitInService(t, c, since)
}

// waitInService waits until customers replica c is back in service, as a rolling update waits
// until a new pod is available before it stops the next one: every cart replica has a
// connection to it, and it has answered validations since it had answered since. A cart
// replica whose resolver dropped c's address while c was out of the name's answer needs a
// re-resolution for that.
func (rt *replicaTest) waitInService(t *testing.T, c *Replica, since int64) {
	t.Helper()
	began := time.Now()
	poll.Until(t, func() error {
		if rt.logs.validations(c.Name)[0] <= since {
			return errors.New(c.Name + " has answered no validation since it started")
		}
		for _, k := range rt.set.Cart() {
			if ok, err := connected(k.PID(), c.GRPCAddr); err != nil || !ok {
				return fmt.Errorf("%s not connected to %s (%w)", k.Name, c.Name, err)
			}
		}
		return nil
	})
	if took := time.Since(began); took > reResolution {
		t.Errorf("%s was in every cart replica's pick list %v after it started, want within %v", c.Name, took.Round(time.Millisecond), reResolution)
	}
}

// response is a REST answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (rt *replicaTest) post(t *testing.T, r *Replica, path string, body any) response {
	t.Helper()
	return rt.do(t, r, http.MethodPost, path, "", body)
}

// do sends a request with a JSON body (none when body is nil) and a bearer token (none when
// empty) to replica r.
func (rt *replicaTest) do(t *testing.T, r *Replica, method, path, token string, body any) response {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, r.URL()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, r.Name, err)
	}
	defer func() { _ = res.Body.Close() }()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: buf.Bytes()}
}

// login logs a demo user in on customers replica c and returns the access token.
func (rt *replicaTest) login(t *testing.T, c *Replica, email string) string {
	t.Helper()
	res := rt.post(t, c, "/api/v1/auth/login", map[string]string{"email": email, "password": "testPass123"})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(res.body, &out); res.code != http.StatusOK || err != nil || out.AccessToken == "" {
		t.Fatalf("login %s on %s: %d %s", email, c.Name, res.code, res.body)
	}
	return out.AccessToken
}

// startNATS runs a NATS server with JetStream until the test ends and returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	n, err := StartNATS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n.URL
}
