package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fullstorydev/grpchan/inprocgrpc"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/idempotency"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/config"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

// withKey sends a REST request to cart with the Idempotency-Key header set to key.
func (h *harness) withKey(method, path, token, key string, body any) servicetest.Response {
	h.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.rest+path, bytes.NewReader(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", servicetest.Bearer(token))
	req.Header["Idempotency-Key"] = []string{key}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
		return servicetest.Response{}
	}
	defer func() { _ = res.Body.Close() }()
	out := servicetest.Response{Code: res.StatusCode, Header: res.Header}
	if out.Raw, err = io.ReadAll(res.Body); err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
	}
	_ = json.Unmarshal(out.Raw, &out.JSON)
	return out
}

// quantity returns the quantity of product in the cart of token's user, 0 when it is not
// there.
func (h *harness) quantity(token, product string) int {
	h.t.Helper()
	var got struct {
		Items []struct {
			ProductID string `json:"product_id"`
			Quantity  int    `json:"quantity"`
		} `json:"items"`
	}
	h.do(http.MethodGet, "/api/v1/carts/me", token, nil).Decode(h.t, &got)
	for _, it := range got.Items {
		if it.ProductID == product {
			return it.Quantity
		}
	}
	return 0
}

// count returns how many products of the catalog match search.
func (h *harness) count(search string) int {
	h.t.Helper()
	var page struct {
		Products []struct {
			ID string `json:"id"`
		} `json:"products"`
	}
	h.do(http.MethodGet, "/api/v1/products?page_size=100&search="+url.QueryEscape(search), "", nil).Decode(h.t, &page)
	return len(page.Products)
}

// TestIdempotencyKeyREST retries adds to a cart with an Idempotency-Key, as a client whose
// answer was lost does, and tries the key from the wrong side: another request, another user, a
// malformed key, concurrent repeats.
func TestIdempotencyKeyREST(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		c, h := startShop(t, dialect)
		_, _, alice := c.shopper()
		_, _, bob := c.shopper()
		kettle, mug := migrations.DemoProductIDs[0], migrations.DemoProductIDs[1]
		const path = "/api/v1/carts/me/items"
		add := map[string]any{"product_id": kettle, "quantity": 2}

		first := h.withKey(http.MethodPost, path, alice, "order-1", add)
		if first.Code != http.StatusOK || first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first add = %d %v %s", first.Code, first.Header, first.Raw)
		}
		retry := h.withKey(http.MethodPost, path, alice, "order-1", add)
		if retry.Code != first.Code || !bytes.Equal(retry.Raw, first.Raw) {
			t.Errorf("retry = %d %s, want the first answer %d %s", retry.Code, retry.Raw, first.Code, first.Raw)
		}
		if got := retry.Header.Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("retry's Idempotent-Replayed = %q, want true", got)
		}
		if got := h.quantity(alice, kettle); got != 2 {
			t.Fatalf("after add and retry, quantity %d, want 2", got)
		}

		t.Run("another request with the key is 422 and changes nothing", func(t *testing.T) {
			for _, body := range []map[string]any{
				{"product_id": kettle, "quantity": 3},
				{"product_id": mug, "quantity": 2},
			} {
				res := h.withKey(http.MethodPost, path, alice, "order-1", body)
				if res.Code != http.StatusUnprocessableEntity {
					t.Errorf("%v: %d %s, want 422", body, res.Code, res.Raw)
				}
			}
			if k, m := h.quantity(alice, kettle), h.quantity(alice, mug); k != 2 || m != 0 {
				t.Errorf("quantities %d and %d, want 2 and 0", k, m)
			}
		})

		t.Run("another user's same key is another key", func(t *testing.T) {
			res := h.withKey(http.MethodPost, path, bob, "order-1", add)
			if res.Code != http.StatusOK || res.Header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("bob's add = %d %v %s", res.Code, res.Header, res.Raw)
			}
			if bytes.Equal(res.Raw, first.Raw) {
				t.Error("bob got alice's cart")
			}
			if k := h.quantity(bob, kettle); k != 2 {
				t.Errorf("bob's quantity %d, want 2", k)
			}
			if k := h.quantity(alice, kettle); k != 2 {
				t.Errorf("alice's quantity %d, want 2", k)
			}
		})

		t.Run("a malformed key is 400 and changes nothing", func(t *testing.T) {
			for name, key := range map[string]string{
				"empty": "", "256 characters": strings.Repeat("k", 256), "a space": "order 2",
				"non-ASCII": "bestellung-ä", "a tab": "order\t2",
			} {
				res := h.withKey(http.MethodPost, path, alice, key, map[string]any{"product_id": mug, "quantity": 1})
				if res.Code != http.StatusBadRequest {
					t.Errorf("%s: %d %s, want 400", name, res.Code, res.Raw)
				}
			}
			if m := h.quantity(alice, mug); m != 0 {
				t.Errorf("quantity %d, want 0", m)
			}
			if res := h.withKey(http.MethodPost, path, alice, strings.Repeat("~", 255), map[string]any{"product_id": mug, "quantity": 1}); res.Code != http.StatusOK {
				t.Errorf("a key of 255 characters: %d %s, want 200", res.Code, res.Raw)
			}
		})

		t.Run("concurrent repeats add once", func(t *testing.T) {
			_, _, carol := c.shopper()
			const n = 12
			answers := make([]servicetest.Response, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					answers[i] = h.withKey(http.MethodPost, path, carol, "burst", map[string]any{"product_id": mug, "quantity": 1})
				})
			}
			wg.Wait()
			ok := 0
			for _, res := range answers {
				switch res.Code {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
				default:
					t.Errorf("concurrent repeat: %d %s, want 200 or 409", res.Code, res.Raw)
				}
			}
			if ok == 0 {
				t.Error("no repeat succeeded")
			}
			if m := h.quantity(carol, mug); m != 1 {
				t.Errorf("quantity %d after %d concurrent repeats, want 1", m, n)
			}
			// Once the first is done, a repeat is its answer.
			if res := h.withKey(http.MethodPost, path, carol, "burst", map[string]any{"product_id": mug, "quantity": 1}); res.Code != http.StatusOK || res.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("repeat after the burst = %d %v", res.Code, res.Header)
			}
		})

		t.Run("an error is the answer too", func(t *testing.T) {
			// Above the per-line limit: 400, and the retry gets the same 400 even though the
			// cart changed meanwhile so that the request itself would now succeed.
			big := map[string]any{"product_id": kettle, "quantity": 98}
			res := h.withKey(http.MethodPost, path, alice, "too-many", big)
			if res.Code != http.StatusBadRequest {
				t.Fatalf("add 98 = %d %s, want 400", res.Code, res.Raw)
			}
			h.do(http.MethodDelete, path+"/"+kettle, alice, nil)
			retry := h.withKey(http.MethodPost, path, alice, "too-many", big)
			if retry.Code != res.Code || !bytes.Equal(retry.Raw, res.Raw) || retry.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("retry = %d %s, want the replayed %d %s", retry.Code, retry.Raw, res.Code, res.Raw)
			}
			if k := h.quantity(alice, kettle); k != 0 {
				t.Errorf("quantity %d, want 0", k)
			}
		})
	})
}

// TestIdempotencyKeyCreateProduct retries creating a product: the retry answers the same 201
// and the same product, and the catalog gains one.
func TestIdempotencyKeyCreateProduct(t *testing.T) {
	c, h := startShop(t, "sqlite")
	admin := c.login("admin1@email.com", demoPassword)
	count := func() int { return h.count("Gift Card") }
	body := map[string]any{"name": "Gift Card", "description": "Any amount.", "price": "25"}
	first := h.withKey(http.MethodPost, "/api/v1/products", admin, "gift-card-1", body)
	if first.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", first.Code, first.Raw)
	}
	retry := h.withKey(http.MethodPost, "/api/v1/products", admin, "gift-card-1", body)
	if retry.Code != http.StatusCreated || !bytes.Equal(retry.Raw, first.Raw) || retry.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = %d %v %s, want the replayed 201 %s", retry.Code, retry.Header, retry.Raw, first.Raw)
	}
	if n := count(); n != 1 {
		t.Errorf("%d gift cards, want 1", n)
	}
	body["price"] = "30"
	if res := h.withKey(http.MethodPost, "/api/v1/products", admin, "gift-card-1", body); res.Code != http.StatusUnprocessableEntity {
		t.Errorf("another product with the key = %d %s, want 422", res.Code, res.Raw)
	}
	if n := count(); n != 1 {
		t.Errorf("%d gift cards, want 1", n)
	}
}

// TestIdempotencyKeyGRPC is the same over gRPC, with the key in the metadata.
func TestIdempotencyKeyGRPC(t *testing.T) {
	c, h := startShop(t, "sqlite")
	_, _, tok := c.shopper()
	kettle := migrations.DemoProductIDs[0]
	call := func(key string, req *cartv1.AddItemRequest) (*cartv1.AddItemResponse, metadata.MD, error) {
		ctx := metadata.AppendToOutgoingContext(servicetest.WithAuthorization(servicetest.Bearer(tok)), "idempotency-key", key)
		var header metadata.MD
		res, err := h.carts.AddItem(ctx, req, grpc.Header(&header))
		return res, header, err
	}
	req := &cartv1.AddItemRequest{UserId: "me", ProductId: kettle, Quantity: 2}
	first, header, err := call("grpc-1", req)
	if err != nil {
		t.Fatal(err)
	}
	if got := header.Get("idempotent-replayed"); len(got) != 0 {
		t.Errorf("first answer's idempotent-replayed = %v, want none", got)
	}
	retry, header, err := call("grpc-1", req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, retry, protocmp.Transform()); diff != "" {
		t.Errorf("retry (-first +retry):\n%s", diff)
	}
	if got := header.Get("idempotent-replayed"); len(got) != 1 || got[0] != "true" {
		t.Errorf("retry's idempotent-replayed = %v, want true", got)
	}
	_, _, err = call("grpc-1", &cartv1.AddItemRequest{UserId: "me", ProductId: kettle, Quantity: 3})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || grpcserver.Reason(st) != grpcserver.ReasonIdempotencyKeyReused {
		t.Errorf("another request with the key: %v, want INVALID_ARGUMENT %s", err, grpcserver.ReasonIdempotencyKeyReused)
	}
	_, _, err = call("grpc 2", req)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || grpcserver.Reason(st) != "" {
		t.Errorf("a malformed key: %v, want INVALID_ARGUMENT", err)
	}
	if q := h.quantity(tok, kettle); q != 2 {
		t.Errorf("quantity %d, want 2", q)
	}
}

// hangUp is a hook on cart's database that plays a client whose timeout strikes between the
// write and its answer: a request's cancel put into trigger is called right after the next
// statement that adds to a cart has committed, and the hook waits until cart has seen that
// client go. settled is closed once cart has then recorded or released the request's key.
type hangUp struct {
	trigger atomic.Pointer[context.CancelFunc]
	cut     atomic.Bool
	once    sync.Once
	settled chan struct{}
}

// hangUpAfterAdd returns cart's spec with a hangUp hook on its database.
func hangUpAfterAdd() (service.Spec[config.Config], *hangUp) {
	hook := &hangUp{settled: make(chan struct{})}
	hooked := spec
	hooked.Build = func(ctx context.Context, d service.Deps[config.Config]) (service.Parts, error) {
		err := d.DB.Callback().Raw().After("gorm:raw").Register("test:hang_up_after_add", func(tx *gorm.DB) {
			if tx.Error != nil || !strings.HasPrefix(tx.Statement.SQL.String(), "INSERT INTO cart_items") {
				return
			}
			cancel := hook.trigger.Swap(nil)
			if cancel == nil {
				return
			}
			(*cancel)()
			hook.cut.Store(true)
			// REST reaches cart in-process: the client context is the HTTP request's, which
			// ends once the server has noticed the closed connection.
			if client := inprocgrpc.ClientContext(tx.Statement.Context); client != nil {
				<-client.Done()
			}
		})
		if err != nil {
			return service.Parts{}, err
		}
		settle := func(tx *gorm.DB) {
			if tx.Statement.Table == idempotency.Table && hook.cut.Load() {
				hook.once.Do(func() { close(hook.settled) })
			}
		}
		if err := d.DB.Callback().Update().After("gorm:commit_or_rollback_transaction").Register("test:settled_update", settle); err != nil {
			return service.Parts{}, err
		}
		if err := d.DB.Callback().Delete().After("gorm:commit_or_rollback_transaction").Register("test:settled_delete", settle); err != nil {
			return service.Parts{}, err
		}
		return build(ctx, d)
	}
	return hooked, hook
}

// TestIdempotencyKeyClientHangsUp cuts a request off after its add has committed and before
// cart answers it, then retries it with the same key: the retry answers what the first request
// did once its client had gone, and the cart gains the quantity once.
func TestIdempotencyKeyClientHangsUp(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		hooked, hook := hangUpAfterAdd()
		c := startCustomers(t, "sqlite", nil)
		h := startSpec(t, hooked, dialect, c.grpc, nil)
		_, _, alice := c.shopper()
		kettle := migrations.DemoProductIDs[0]
		const path = "/api/v1/carts/me/items"
		add := map[string]any{"product_id": kettle, "quantity": 2}

		ctx, hangUp := context.WithCancel(t.Context())
		defer hangUp()
		hook.trigger.Store(&hangUp)
		raw, err := json.Marshal(add)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.rest+path, bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", servicetest.Bearer(alice))
		req.Header.Set("Idempotency-Key", "cut-off")
		if res, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
			if err == nil {
				_ = res.Body.Close()
			}
			t.Fatalf("the first request = %v, want it cut off by its client", err)
		}
		if hook.trigger.Load() != nil {
			t.Fatal("the hook did not hang up")
		}
		select {
		case <-hook.settled:
		case <-time.After(10 * time.Second):
			t.Fatal("cart neither recorded nor released the key of the cut-off request")
		}

		retry := h.withKey(http.MethodPost, path, alice, "cut-off", add)
		if retry.Code != http.StatusOK || retry.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry = %d %v %s, want the first request's 200 replayed", retry.Code, retry.Header, retry.Raw)
		}
		if got := h.quantity(alice, kettle); got != 2 {
			t.Errorf("after the cut-off add and its retry, quantity %d, want 2", got)
		}
	})
}

// loseAnswers returns cart's spec with a hook on its database that plays a cart that dies, or
// loses its database, right after a write: while lose is set, recording the answer of an
// Idempotency-Key fails, and the key stays held. expire then ages the key's lock as the minute
// after such a crash would.
func loseAnswers() (service.Spec[config.Config], *atomic.Bool, func(t *testing.T, key string)) {
	lose := &atomic.Bool{}
	var db atomic.Pointer[gorm.DB]
	hooked := spec
	hooked.Build = func(ctx context.Context, d service.Deps[config.Config]) (service.Parts, error) {
		db.Store(d.DB)
		err := d.DB.Callback().Update().Before("gorm:update").Register("test:lose_the_answer", func(tx *gorm.DB) {
			if !lose.Load() || tx.Statement.Table != idempotency.Table {
				return
			}
			if m, ok := tx.Statement.Dest.(map[string]any); ok {
				if _, ok := m["done"]; ok {
					_ = tx.AddError(errors.New("the answer is lost"))
				}
			}
		})
		if err != nil {
			return service.Parts{}, err
		}
		return build(ctx, d)
	}
	expire := func(t *testing.T, key string) {
		t.Helper()
		err := db.Load().WithContext(t.Context()).Table(idempotency.Table).Where("idempotency_key = ?", key).
			Update("locked_at", time.Now().Add(-idempotency.DefaultLockTimeout-time.Second)).Error
		if err != nil {
			t.Fatal(err)
		}
	}
	return hooked, lose, expire
}

// TestIdempotencyKeyCreateProductAnswerLost creates a product whose answer is never recorded,
// then retries it with the same key: the retry is 409 while the first request's lock lasts,
// and then answers the product the first request created, which the catalog holds once.
func TestIdempotencyKeyCreateProductAnswerLost(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		hooked, lose, expire := loseAnswers()
		c := startCustomers(t, "sqlite", nil)
		h := startSpec(t, hooked, dialect, c.grpc, nil)
		admin := c.login("admin1@email.com", demoPassword)
		const path = "/api/v1/products"
		body := map[string]any{"name": "Lost Answer", "description": "Created once.", "price": "25"}

		lose.Store(true)
		first := h.withKey(http.MethodPost, path, admin, "lost-1", body)
		lose.Store(false)
		if first.Code != http.StatusCreated {
			t.Fatalf("create = %d %s", first.Code, first.Raw)
		}
		if res := h.withKey(http.MethodPost, path, admin, "lost-1", body); res.Code != http.StatusConflict {
			t.Errorf("retry while the key is held = %d %s, want 409", res.Code, res.Raw)
		}
		expire(t, "lost-1")
		retry := h.withKey(http.MethodPost, path, admin, "lost-1", body)
		if retry.Code != http.StatusCreated || !bytes.Equal(retry.Raw, first.Raw) {
			t.Errorf("retry after the lock = %d %s, want the first product's 201 %s", retry.Code, retry.Raw, first.Raw)
		}
		if n := h.count("Lost Answer"); n != 1 {
			t.Errorf("%d products, want 1", n)
		}
		replay := h.withKey(http.MethodPost, path, admin, "lost-1", body)
		if !bytes.Equal(replay.Raw, first.Raw) || replay.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("then a retry = %d %v %s, want the first product replayed", replay.Code, replay.Header, replay.Raw)
		}
	})
}
