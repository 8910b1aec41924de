package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	shopdb "github.com/acme/shop/foundation/database"
	"github.com/acme/shop/tools/replicaset"
)

// erasureLoadUsers are the users whose carts the load reads and adds to while others are
// deleted; none of them is deleted.
const erasureLoadUsers = 100

// erasureDeleters are the admin's DELETE requests in flight at once.
const erasureDeleters = 4

// erasureResult is what one erasure run measured.
type erasureResult struct {
	db      string
	deleted int
	// deletes are the DELETE requests' latencies; lag each user's time from the deletion's
	// answer (204) to their tombstone in cart's database (erased_users.erased_at); applied each
	// event's time from its outbox row (customers' commit) to its handled_events row (cart's).
	deletes, lag, applied result
	// cart is the cart load that ran meanwhile; linesLeft the deleted users' cart lines
	// still in cart's database at the end (0 when every erasure was complete).
	cart     result
	failures *tally
	// loadAvg is the machine's load average (/proc/loadavg) before the deletions began.
	loadAvg   string
	linesLeft int64
	took      time.Duration
}

// runErasure deletes users users, each with a 10-line cart, through the admin's
// DELETE /api/v1/users/{id}, while workers requests at a time read and add to other users'
// carts, on db ("SQLite" or "PostgreSQL"), with a NATS server with JetStream of its own, and
// measures how long each erasure took to reach cart.
func runErasure(o options, dir, db string, users int) (erasureResult, error) {
	ctx := context.Background()
	res := erasureResult{db: db}
	nats, err := replicaset.StartNATS("127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer nats.Shutdown()

	env := map[string]string{"APP_ENV": "development", "LOG_LEVEL": "warn", "LOG_FORMAT": "json", "GOMEMLIMIT": "48MiB",
		"CUSTOMERS_JWT_SECRET": benchSecret, "CUSTOMERS_DEMO_DATA": "false", "CART_DEMO_DATA": "false",
		"CART_WRITE_LIMIT_PER_USER": "1000000",
		"CUSTOMERS_NATS_URL":        nats.URL, "CART_NATS_URL": nats.URL}
	maps.Copy(env, tracingEnv(""))
	customersDB, cartDB := shopdb.Config{}, shopdb.Config{}
	if db == "PostgreSQL" {
		cdb, err := createDatabase(ctx, o.admin, "bench_customers")
		if err != nil {
			return res, err
		}
		defer cdb.drop(ctx)
		kdb, err := createDatabase(ctx, o.admin, "bench_cart")
		if err != nil {
			return res, err
		}
		defer kdb.drop(ctx)
		customersDB.DSN, cartDB.DSN = cdb.dsn, kdb.dsn
	} else {
		data, err := os.MkdirTemp("", "bench-sqlite-")
		if err != nil {
			return res, err
		}
		defer func() { _ = os.RemoveAll(data) }()
		customersDB.SQLitePath, cartDB.SQLitePath = filepath.Join(data, "customers.db"), filepath.Join(data, "cart.db")
		env["CUSTOMERS_SQLITE_PATH"], env["CART_SQLITE_PATH"] = customersDB.SQLitePath, cartDB.SQLitePath
	}
	d, err := startSingle(dir, env, customersDB.DSN, cartDB.DSN)
	if err != nil {
		return res, err
	}
	defer d.stop()
	quiet := slog.New(slog.DiscardHandler)
	cdb, err := shopdb.Open(ctx, customersDB, quiet)
	if err != nil {
		return res, err
	}
	defer func() { _ = shopdb.Close(cdb) }()
	kdb, err := shopdb.Open(ctx, cartDB, quiet)
	if err != nil {
		return res, err
	}
	defer func() { _ = shopdb.Close(kdb) }()
	fmt.Fprintf(os.Stderr, "erasure on %s: ready in %s; seeding %d users to delete ...\n", db, d.ready, users)
	s, err := seedErasure(ctx, cdb, kdb, users)
	if err != nil {
		return res, err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, MaxConnsPerHost: o.workers, DisableCompression: true}}
	cartURL := "http://" + d.cart[0].http
	failures := &tally{}
	res.failures = failures
	// Every other request reads a cart, the others add 1 to a line, spread over every user's
	// every product so that no line nears the maximum quantity.
	cartCall := func(ctx context.Context, n int) bool {
		k := n / 2
		var req *http.Request
		if n%2 == 0 {
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, cartURL+"/api/v1/carts/me", nil)
		} else {
			body := fmt.Sprintf(`{"product_id":%q,"quantity":1}`, s.products[k/len(s.tokens)%len(s.products)])
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, cartURL+"/api/v1/carts/me/items", strings.NewReader(body))
		}
		req.Header.Set("Authorization", "Bearer "+s.tokens[k%len(s.tokens)])
		res, err := client.Do(req)
		if err != nil {
			failures.add(err.Error())
			return false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode/100 != 2 {
			failures.add(req.Method + " " + res.Status)
			return false
		}
		return true
	}
	// The cart load runs from a warm-up before the first deletion until every erasure landed.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := make(chan result, 1)
	go func() { loaded <- loadUntil(loadCtx, o.workers, cartCall) }()
	time.Sleep(time.Second)

	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.loadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	began := time.Now()
	acked, deletes, err := deleteUsers(d.customers[0].http, s.adminToken, s.victims)
	if err != nil {
		stopLoad()
		<-loaded
		return res, err
	}
	res.deletes = deletes
	fmt.Fprintf(os.Stderr, "  %d deletions acknowledged in %v; waiting for their erasure ...\n", len(acked), time.Since(began).Round(time.Millisecond))
	erased, err := waitErased(ctx, kdb, len(s.victims), 5*time.Minute)
	res.took = time.Since(began)
	stopLoad()
	res.cart = <-loaded
	if err != nil {
		return res, err
	}
	res.deleted = len(erased)

	var lags []time.Duration
	for id, at := range erased {
		ack, ok := acked[id]
		if !ok {
			return res, fmt.Errorf("cart erased user %s, whom the benchmark did not delete", id)
		}
		// The answer may reach the client a little after cart has applied the event.
		lags = append(lags, max(0, at.Sub(ack)))
	}
	slices.Sort(lags)
	res.lag = summarize(lags, 0, res.took)
	if res.applied, err = appliedLag(ctx, cdb, kdb); err != nil {
		return res, err
	}
	err = kdb.WithContext(ctx).Table("cart_items").Where("user_id IN (?)", kdb.Table("erased_users").Select("user_id")).Count(&res.linesLeft).Error
	return res, err
}

// tally counts failures by what they were.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *tally) add(what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[what]++
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t.n)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, t.n[k]))
	}
	return strings.Join(parts, ", ")
}

// erasureData is what the erasure run seeded.
type erasureData struct {
	adminToken string
	// tokens are the load users'.
	tokens   []string
	victims  []string
	products []string
}

// seedErasure inserts, straight into the services' databases (as an operator's import would,
// not through registration and its limit): an admin and the load users, with live sessions
// and tokens, a 20-product catalog, and users users to delete, with a 10-line cart each.
func seedErasure(ctx context.Context, cdb, kdb *gorm.DB, users int) (*erasureData, error) {
	now := time.Now().UTC()
	s := &erasureData{}
	var userRows, sessionRows []map[string]any
	addUser := func(admin bool) (id, token string, err error) {
		id, jti := uuid.Must(uuid.NewV7()).String(), uuid.NewString()
		userRows = append(userRows, map[string]any{"id": id, "email": "erase-" + id + "@example.com",
			"password_hash": passwordHash,
			"first_name":    "Bench", "last_name": "User", "is_admin": admin, "created_at": now, "updated_at": now})
		sessionRows = append(sessionRows, map[string]any{"id": jti, "user_id": id, "expires_at": now.Add(24 * time.Hour), "created_at": now})
		token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Issuer: "customers", Subject: id, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(24 * time.Hour)),
		}).SignedString([]byte(benchSecret))
		return id, token, err
	}
	var err error
	if _, s.adminToken, err = addUser(true); err != nil {
		return nil, err
	}
	for range erasureLoadUsers {
		_, token, err := addUser(false)
		if err != nil {
			return nil, err
		}
		s.tokens = append(s.tokens, token)
	}
	for range users {
		id, _, err := addUser(false)
		if err != nil {
			return nil, err
		}
		s.victims = append(s.victims, id)
	}
	var productRows, lineRows []map[string]any
	for i := range 20 {
		id := uuid.Must(uuid.NewV7()).String()
		s.products = append(s.products, id)
		productRows = append(productRows, map[string]any{"id": id, "name": fmt.Sprintf("Product %02d", i), "description": "A product for the benchmark.",
			"price_cents": int64(100 + i*137), "currency_code": "USD", "created_at": now, "updated_at": now})
	}
	for _, u := range s.victims {
		for j := range 10 {
			lineRows = append(lineRows, map[string]any{"user_id": u, "product_id": s.products[j], "quantity": int32(1 + j%3), "created_at": now, "updated_at": now})
		}
	}
	for _, t := range []struct {
		db    *gorm.DB
		table string
		rows  []map[string]any
	}{{cdb, "users", userRows}, {cdb, "sessions", sessionRows}, {kdb, "products", productRows}, {kdb, "cart_items", lineRows}} {
		for chunk := range slices.Chunk(t.rows, 500) {
			if err := t.db.WithContext(ctx).Table(t.table).Create(chunk).Error; err != nil {
				return nil, fmt.Errorf("seed %s: %w", t.table, err)
			}
		}
	}
	return s, nil
}

// deleteUsers deletes each of ids as the admin, erasureDeleters at a time, and returns when
// each deletion was acknowledged (its 204 received) and the requests' latencies.
func deleteUsers(customersHTTP, adminToken string, ids []string) (map[string]time.Time, result, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: erasureDeleters, DisableCompression: true}}
	var (
		mu    sync.Mutex
		acked = make(map[string]time.Time, len(ids))
		lat   []time.Duration
		errs  []error
		wg    sync.WaitGroup
	)
	next := make(chan string)
	began := time.Now()
	for range erasureDeleters {
		wg.Go(func() {
			for id := range next {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, "http://"+customersHTTP+"/api/v1/users/"+id, nil)
				req.Header.Set("Authorization", "Bearer "+adminToken)
				t0 := time.Now()
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
					if res.StatusCode != http.StatusNoContent {
						err = fmt.Errorf("DELETE user %s: %s", id, res.Status)
					}
				}
				at := time.Now()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					acked[id] = at
					lat = append(lat, at.Sub(t0))
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	slices.Sort(lat)
	if len(errs) > 0 {
		return nil, result{}, fmt.Errorf("%d of %d deletions failed, the first: %w", len(errs), len(ids), errs[0])
	}
	return acked, summarize(lat, 0, time.Since(began)), nil
}

// waitErased polls cart's tombstones until there are want, and returns when each user was
// erased.
func waitErased(ctx context.Context, kdb *gorm.DB, want int, limit time.Duration) (map[string]time.Time, error) {
	deadline := time.Now().Add(limit)
	var n int64
	for {
		if err := kdb.WithContext(ctx).Table("erased_users").Count(&n).Error; err != nil {
			return nil, err
		}
		if n >= int64(want) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d users erased after %v", n, want, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rows []struct {
		UserID   string
		ErasedAt time.Time
	}
	if err := kdb.WithContext(ctx).Table("erased_users").Find(&rows).Error; err != nil {
		return nil, err
	}
	erased := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		erased[r.UserID] = r.ErasedAt
	}
	return erased, nil
}

// appliedLag is each event's time from its outbox row, written in customers' deletion
// transaction, to its handled_events row, written in cart's erasure transaction.
func appliedLag(ctx context.Context, cdb, kdb *gorm.DB) (result, error) {
	var written []struct {
		ID        string
		CreatedAt time.Time
	}
	if err := cdb.WithContext(ctx).Table("outbox").Find(&written).Error; err != nil {
		return result{}, err
	}
	var handled []struct {
		ID        string
		HandledAt time.Time
	}
	if err := kdb.WithContext(ctx).Table("handled_events").Find(&handled).Error; err != nil {
		return result{}, err
	}
	at := make(map[string]time.Time, len(handled))
	for _, h := range handled {
		at[h.ID] = h.HandledAt
	}
	var lags []time.Duration
	for _, w := range written {
		h, ok := at[w.ID]
		if !ok {
			return result{}, fmt.Errorf("event %s is in the outbox but was not handled", w.ID)
		}
		lags = append(lags, h.Sub(w.CreatedAt))
	}
	if len(lags) == 0 {
		return result{}, errors.New("the outbox is empty")
	}
	slices.Sort(lags)
	return summarize(lags, 0, 0), nil
}

func printErasure(rs []erasureResult) {
	var cells [][]string
	for _, r := range rs {
		cells = append(cells, []string{r.db, strconv.Itoa(r.deleted), ms(r.deletes.P50) + " / " + ms(r.deletes.P99),
			ms(r.lag.P50) + " / " + ms(r.lag.P99) + " / " + ms(r.lag.latencies[len(r.lag.latencies)-1]),
			ms(r.applied.P50) + " / " + ms(r.applied.P99),
			fmt.Sprintf("%.1f", r.took.Seconds()), strconv.Itoa(r.cart.Requests), strconv.Itoa(r.cart.Errors),
			ms(r.cart.P50) + " / " + ms(r.cart.P99), strconv.FormatInt(r.linesLeft, 10), r.loadAvg})
	}
	for _, r := range rs {
		if r.cart.Errors > 0 {
			fmt.Printf("\nFailed cart requests on %s: %v\n", r.db, r.failures)
		}
	}
	printTable("### Erasure: deleting users under cart load", []string{"database", "users deleted",
		"DELETE p50 / p99 ms", "erasure lag p50 / p99 / max ms (204 → tombstone)", "outbox commit → applied p50 / p99 ms",
		"first deletion to last erasure s", "cart requests meanwhile", "failed", "cart p50 / p99 ms", "deleted users' lines left", "load average before"}, cells)
}
