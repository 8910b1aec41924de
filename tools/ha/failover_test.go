package ha_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/tools/ha"
	"github.com/acme/shop/tools/replicaset"
)

// Demo users (one per load worker: each adds to its own cart) and the product each adds.
var workers = []struct{ email, product string }{
	{"admin1@email.com", "00000000-0000-7000-8000-000000000101"},
	{"admin2@email.com", "00000000-0000-7000-8000-000000000102"},
	{"nonadmin3@email.com", "00000000-0000-7000-8000-000000000103"},
	{"nonadmin4@email.com", "00000000-0000-7000-8000-000000000104"},
}

// loadPause is each worker's pause between two requests: steady load, not the most the two
// cores (which also run three PostgreSQL servers, Patroni, etcd and four replicas) can take.
const loadPause = 20 * time.Millisecond

// TestFailover runs both services, two replicas each, on a Patroni cluster of three
// PostgreSQL nodes in synchronous mode (package ha), connected with a multi-host DSN and
// target_session_attrs=read-write, and, under steady load (each worker adds 1 to a line of
// its user's cart with a new Idempotency-Key, then reads the cart back, round-robin over the
// cart replicas, every call checking its token with customers): a planned switchover, the
// primary killed (SIGKILL of its Patroni and its PostgreSQL), and the killed node rejoining
// as a standby. It asserts that no acknowledged add is lost (each cart line grew by at least
// the adds answered 2xx, and by at most those plus the ones answered 503, which may or may
// not have committed), that no call was answered 500 or anything but 2xx and 503, and that no
// replica exited. The unavailable windows and the 503s are measured and logged, not
// asserted: Patroni's TTL (20 s) bounds how soon a failover can begin.
func TestFailover(t *testing.T) {
	failover(t, false)
}

// TestFailoverThroughPgBouncer is TestFailover with the services connecting through PgBouncer
// in transaction mode, which reaches the primary through HAProxy and Patroni's /primary health
// check (Cluster.StartProxy).
func TestFailoverThroughPgBouncer(t *testing.T) {
	failover(t, true)
}

func failover(t *testing.T, throughPgBouncer bool) {
	if runtime.GOOS != "linux" {
		t.Skip("the replicas' loopback addresses need Linux")
	}
	missing := ha.Missing()
	if throughPgBouncer {
		missing = append(missing, ha.ProxyMissing()...)
	}
	if m := missing; len(m) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs: apt-get install %s", strings.Join(m, " "))
		}
		t.Skipf("not installed: %s", strings.Join(m, " "))
	}
	logs := newLogs()
	defer func() {
		if t.Failed() {
			logs.dump(t)
		}
	}()
	ctx := t.Context()
	bin := t.TempDir()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := replicaset.Build(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	cluster, err := ha.Start(ctx, ha.Config{Output: logs.writer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	customersDSN, err := cluster.CreateDatabase(ctx, "shop_customers")
	if err != nil {
		t.Fatal(err)
	}
	cartDSN, err := cluster.CreateDatabase(ctx, "shop_cart")
	if err != nil {
		t.Fatal(err)
	}
	if throughPgBouncer {
		proxy, err := cluster.StartProxy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proxy.Close() })
		customersDSN, cartDSN = proxy.DSN("shop_customers"), proxy.DSN("shop_cart")
	}
	// The events between the services flow through the failovers too: users deleted during
	// them must be erased in cart.
	nats, err := replicaset.StartNATS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Shutdown)
	cfg := replicaset.Config{
		Bin: bin, CustomersDSN: customersDSN, CartDSN: cartDSN, NATSURL: nats.URL, Output: logs.writer,
		Env: map[string]string{
			// The users deleted during the test register first, from one address.
			"CUSTOMERS_REGISTER_MAX_PER_ADDR": "1000000",
			"CUSTOMERS_DB_MAX_CONNS":          "4", "CART_DB_MAX_CONNS": "4",
			// The load adds far more than a user may by default.
			"CART_MAX_QUANTITY": "10000", "CART_WRITE_LIMIT_PER_USER": "1000000",
			"CART_IDEMPOTENCY_MAX_KEYS_PER_USER": "1000000",
		},
	}
	cfg.Isolate()
	set, err := replicaset.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := set.Close(); err != nil {
			t.Errorf("close replicas: %v", err)
		}
	})
	pids := func() []int {
		var out []int
		for _, r := range append(set.Customers(), set.Cart()...) {
			out = append(out, r.PID())
		}
		return out
	}
	before := pids()

	l := &load{carts: set.Cart(), customers: set.Customers(), client: &http.Client{Timeout: 15 * time.Second}, stop: make(chan struct{})}
	for _, w := range workers {
		token := login(t, set.Customers()[0].URL(), w.email)
		l.users = append(l.users, &user{token: token, product: w.product, start: quantity(t, l, token, w.product)})
	}
	l.admin = l.users[0].token // admin1
	for i := range leaving {
		l.leaving = append(l.leaving, register(t, set.Customers()[0].URL(), fmt.Sprintf("leaving%d@email.com", i)))
	}
	l.start()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(l.stop)
			l.wg.Wait()
		}
	}
	defer stop()

	l.waitAcked(t, 100)
	step := func(name string, do func()) {
		l.mark(name)
		do()
		if err := cluster.WaitHealthy(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l.waitAcked(t, l.acked.Load()+100)
	}
	step("switchover", func() {
		from, to, err := cluster.Switchover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("switchover: %s -> %s", from.Name, to.Name)
	})
	var killed *ha.Node
	step("kill the primary", func() {
		primary, err := cluster.Primary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		killed = primary
		if err := cluster.Kill(primary); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, func() error {
			p, err := cluster.Primary(ctx)
			if err != nil {
				return err
			}
			if p == killed {
				return fmt.Errorf("%s is still the primary", p.Name)
			}
			return nil
		})
	})
	step("the old primary rejoins", func() {
		if err := cluster.StartNode(killed); err != nil {
			t.Fatal(err)
		}
	})
	stop()

	for _, r := range l.report() {
		t.Log(r)
	}
	if n := l.serverErrors.Load(); n > 0 {
		t.Errorf("%d calls answered neither 2xx nor 503; first: %s", n, l.firstError())
	}
	for i, u := range l.users {
		got := quantity(t, l, u.token, u.product) - u.start
		acked, maybe := u.acked.Load(), u.unavailable.Load()
		if got < acked || got > acked+maybe {
			t.Errorf("%s: the line grew by %d; want at least the %d acknowledged adds, at most %d (with the %d answered 503)",
				workers[i].email, got, acked, acked+maybe, maybe)
		}
	}
	// Every deletion answered 204 reaches cart, on each replica: the user's cart is gone (404).
	// One answered 503 may or may not have committed: either way, both services agree.
	deleted, maybe := l.deletions()
	t.Logf("deletions: %d answered 204, %d answered 503", len(deleted), len(maybe))
	if len(deleted) == 0 {
		t.Error("no deletion was acknowledged")
	}
	for _, id := range maybe {
		code, text := l.call(http.MethodGet, set.Customers()[0].URL()+"/api/v1/users/"+id, l.admin, "", "")
		switch code {
		case http.StatusNotFound:
			deleted = append(deleted, id)
		case http.StatusOK:
			for _, c := range set.Cart() {
				if code, text := l.call(http.MethodGet, c.URL()+"/api/v1/carts/"+id, l.admin, "", ""); code != http.StatusOK {
					t.Errorf("user %s, whose deletion answered 503, exists, but their cart on %s: %d %s, want 200", id, c.Name, code, text)
				}
			}
		default:
			t.Errorf("user %s, whose deletion answered 503: %d %s", id, code, text)
		}
	}
	for _, id := range deleted {
		for _, c := range set.Cart() {
			poll.Until(t, func() error {
				code, text := l.call(http.MethodGet, c.URL()+"/api/v1/carts/"+id, l.admin, "", "")
				if code != http.StatusNotFound {
					return fmt.Errorf("the cart of user %s, deleted (204), on %s: %d %s, want 404 (erased)", id, c.Name, code, text)
				}
				return nil
			})
		}
	}
	if after := pids(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("replica processes changed: %v, then %v; want no restart", before, after)
	}
}

// user is one load worker's user and what happened to its adds.
type user struct {
	token, product     string
	start              int64
	acked, unavailable atomic.Int64
}

// leaving is how many users register before the load and are deleted during it, one every
// deletePause, so that deletions and their events cross every step.
const (
	leaving     = 50
	deletePause = 1200 * time.Millisecond
)

// load is the steady traffic of the test, and its record.
type load struct {
	carts, customers []*replicaset.Replica
	users            []*user
	// admin deletes the leaving users (their ids), one at a time; deleted are those whose
	// deletion answered 204, maybeDeleted counts the 503s.
	admin        string
	leaving      []string
	deleted      []string
	maybeDeleted []string
	client       *http.Client
	next         atomic.Uint64
	acked        atomic.Int64

	serverErrors atomic.Int64

	mu      sync.Mutex
	phases  []*phase
	firstEr string

	stop chan struct{}
	wg   sync.WaitGroup
}

// phase is what the load saw from one step on: the calls not answered 2xx, and when the
// first and last of them were.
type phase struct {
	name               string
	began              time.Time
	unavailable, calls int
	first, last        time.Time
}

func (l *load) start() {
	l.mark("steady")
	l.wg.Go(func() {
		for i, id := range l.leaving {
			select {
			case <-l.stop:
				return
			case <-time.After(deletePause):
			}
			l.deleteUser(l.customers[i%len(l.customers)].URL(), id)
		}
	})
	for _, u := range l.users {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				case <-time.After(loadPause):
				}
				l.add(u)
				l.read(u)
			}
		})
	}
}

func (l *load) mark(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, &phase{name: name, began: time.Now()})
}

func (l *load) cart() string {
	return l.carts[l.next.Add(1)%uint64(len(l.carts))].URL()
}

func (l *load) add(u *user) {
	body := fmt.Sprintf(`{"product_id":%q,"quantity":1}`, u.product)
	code, text := l.call(http.MethodPost, l.cart()+"/api/v1/carts/me/items", u.token, body, rand.Text())
	switch {
	case code >= 200 && code < 300:
		u.acked.Add(1)
		l.acked.Add(1)
	case code == http.StatusServiceUnavailable:
		u.unavailable.Add(1)
	default:
		l.serverError(code, text)
	}
}

// deleteUser has the admin delete the user id through customers at base.
func (l *load) deleteUser(base, id string) {
	code, text := l.call(http.MethodDelete, base+"/api/v1/users/"+id, l.admin, "", "")
	if code != http.StatusNoContent && code != http.StatusServiceUnavailable {
		l.serverError(code, text)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if code == http.StatusNoContent {
		l.deleted = append(l.deleted, id)
	} else {
		l.maybeDeleted = append(l.maybeDeleted, id)
	}
}

// deletions returns the ids of the users whose deletion answered 204, and of those whose
// deletion answered 503.
func (l *load) deletions() (deleted, maybe []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.deleted), slices.Clone(l.maybeDeleted)
}

func (l *load) read(u *user) {
	code, text := l.call(http.MethodGet, l.cart()+"/api/v1/carts/me", u.token, "", "")
	if code != http.StatusOK && code != http.StatusServiceUnavailable {
		l.serverError(code, text)
	}
}

func (l *load) serverError(code int, text string) {
	l.serverErrors.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.firstEr == "" {
		l.firstEr = fmt.Sprintf("%d %s", code, text)
	}
}

func (l *load) firstError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstEr
}

// call makes one request and records it in the current phase; a transport error is code 0.
func (l *load) call(method, url, token, body, key string) (int, string) {
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	code, text := 0, ""
	res, err := l.client.Do(req)
	if err != nil {
		text = err.Error()
	} else {
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		code, text = res.StatusCode, string(b)
	}
	now := time.Now()
	l.mu.Lock()
	p := l.phases[len(l.phases)-1]
	p.calls++
	if code < 200 || code >= 300 {
		p.unavailable++
		if p.first.IsZero() {
			p.first = now
		}
		p.last = now
	}
	l.mu.Unlock()
	return code, text
}

func (l *load) waitAcked(t *testing.T, n int64) {
	t.Helper()
	poll.Until(t, func() error {
		if got := l.acked.Load(); got < n {
			return fmt.Errorf("%d adds acknowledged, waiting for %d", got, n)
		}
		return nil
	})
}

// report says, per phase, how many calls failed and over how long a window.
func (l *load) report() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.phases {
		window := time.Duration(0)
		if !p.first.IsZero() {
			window = p.last.Sub(p.first)
		}
		out = append(out, fmt.Sprintf("%-24s %5d calls, %4d not 2xx (503), unavailable window %v", p.name, p.calls, p.unavailable, window.Round(10*time.Millisecond)))
	}
	return out
}

func login(t *testing.T, customers, email string) string {
	t.Helper()
	res, err := http.Post(customers+"/api/v1/auth/login", "application/json", //nolint:noctx // test set-up
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":"testPass123"}`, email)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("login %s: %d %v", email, res.StatusCode, err)
	}
	return out.AccessToken
}

// register registers email with the test password and returns the new user's id.
func register(t *testing.T, customers, email string) string {
	t.Helper()
	res, err := http.Post(customers+"/api/v1/users", "application/json", //nolint:noctx // test set-up
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":"testPass123"}`, email)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var out struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusCreated || out.ID == "" {
		t.Fatalf("register %s: %d %v", email, res.StatusCode, err)
	}
	return out.ID
}

// quantity reads the quantity of product in the cart of token's user, waiting out 503s.
func quantity(t *testing.T, l *load, token, product string) int64 {
	t.Helper()
	var q int64
	poll.Until(t, func() error {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, l.carts[0].URL()+"/api/v1/carts/me", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := l.client.Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = res.Body.Close() }()
		var cart struct {
			Items []struct {
				ProductID string `json:"product_id"`
				Quantity  int64  `json:"quantity"`
			} `json:"items"`
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET cart: %s", res.Status)
		}
		if err := json.NewDecoder(res.Body).Decode(&cart); err != nil {
			return err
		}
		q = 0
		for _, it := range cart.Items {
			if it.ProductID == product {
				q = it.Quantity
			}
		}
		return nil
	})
	return q
}

// logs keeps every process's output, to show when the test fails.
type logs struct {
	mu  sync.Mutex
	out map[string]*bytes.Buffer
}

func newLogs() *logs { return &logs{out: map[string]*bytes.Buffer{}} }

func (l *logs) writer(name string) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out[name] == nil {
		l.out[name] = &bytes.Buffer{}
	}
	return writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.out[name].Write(p)
	})
}

func (l *logs) dump(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.out))
	for n := range l.out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := l.out[n].String()
		var errs []string
		for line := range strings.Lines(s) {
			if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "grpc.code=Unavailable") {
				errs = append(errs, line)
			}
		}
		if len(s) > 3000 {
			s = "..." + s[len(s)-3000:]
		}
		t.Logf("--- %s: errors:\n%s\nlast lines:\n%s", n, strings.Join(errs, ""), s)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
