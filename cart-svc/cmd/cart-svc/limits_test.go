package main

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/idempotency"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"

	"github.com/acme/shop/cart-svc/internal/config"
	"github.com/acme/shop/cart-svc/internal/migrations"
)

// withDB returns cart's spec, and where its database will be once it has started.
func withDB() (service.Spec[config.Config], *atomic.Pointer[gorm.DB]) {
	var db atomic.Pointer[gorm.DB]
	hooked := spec
	hooked.Build = func(ctx context.Context, d service.Deps[config.Config]) (service.Parts, error) {
		db.Store(d.DB)
		return build(ctx, d)
	}
	return hooked, &db
}

// retryAfter returns the seconds of a response's Retry-After header, 0 when it has none.
func retryAfter(res servicetest.Response) int {
	n, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	return n
}

// TestIdempotencyKeysCapped adds to a cart with a fresh Idempotency-Key in a loop, as a client
// that grows the key table would: past the cap each add is a 429 whose Retry-After is when the
// oldest key expires, and adds nothing; the key table stops growing at the cap; and a repeat
// of a recorded add still answers its first answer.
func TestIdempotencyKeysCapped(t *testing.T) {
	const maxKeys = 5
	hooked, db := withDB()
	c := startCustomers(t, "sqlite", nil)
	h := startSpec(t, hooked, "sqlite", c.grpc, map[string]string{"CART_IDEMPOTENCY_MAX_KEYS_PER_USER": strconv.Itoa(maxKeys)})
	_, _, alice := c.shopper()
	mug := migrations.DemoProductIDs[1]
	const path = "/api/v1/carts/me/items"
	add := map[string]any{"product_id": mug, "quantity": 1}
	keys := func() int64 {
		t.Helper()
		var n int64
		if err := db.Load().WithContext(t.Context()).Table(idempotency.Table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	var first servicetest.Response
	for i := range 3 * maxKeys {
		res := h.withKey(http.MethodPost, path, alice, "fresh-"+strconv.Itoa(i), add)
		switch {
		case i == 0:
			first = res
			fallthrough
		case i < maxKeys:
			if res.Code != http.StatusOK {
				t.Fatalf("add %d = %d %s, want 200", i, res.Code, res.Raw)
			}
		default:
			wait := retryAfter(res)
			if res.Code != http.StatusTooManyRequests || wait < 1 || wait > int(idempotency.DefaultTTL.Seconds()) {
				t.Fatalf("add %d with a fresh key past the cap = %d, Retry-After %q, %s; want 429 with Retry-After within 24 hours",
					i, res.Code, res.Header.Get("Retry-After"), res.Raw)
			}
			if wait < int((idempotency.DefaultTTL - time.Hour).Seconds()) {
				t.Errorf("Retry-After %d s, want about 24 hours: when the oldest key expires", wait)
			}
		}
		if n := keys(); n > maxKeys {
			t.Fatalf("after add %d the key table holds %d keys, want at most %d", i, n, maxKeys)
		}
	}
	if n := keys(); n != maxKeys {
		t.Errorf("the key table holds %d keys, want %d", n, maxKeys)
	}
	if q := h.quantity(alice, mug); q != maxKeys {
		t.Errorf("quantity %d, want %d: a refused add must add nothing", q, maxKeys)
	}
	replay := h.withKey(http.MethodPost, path, alice, "fresh-0", add)
	if replay.Code != http.StatusOK || replay.Header.Get("Idempotent-Replayed") != "true" || string(replay.Raw) != string(first.Raw) {
		t.Errorf("replay at the cap = %d %v %s, want the first answer replayed: %s", replay.Code, replay.Header, replay.Raw, first.Raw)
	}
	// Without a key nothing is recorded, and the add is not held back.
	if res := h.do(http.MethodPost, path, alice, add); res.Code != http.StatusOK {
		t.Errorf("an add without a key at the cap = %d %s, want 200", res.Code, res.Raw)
	}
}

// TestIdempotencyReplayAuthorized: an admin adds to another user's cart with an
// Idempotency-Key and is then demoted; the replay of that add, which answered the admin before,
// is now a 403, as the add itself would be.
func TestIdempotencyReplayAuthorized(t *testing.T) {
	c, h := startShop(t, "sqlite")
	_, shopper, shopperToken := c.shopper()
	admin1, admin2 := c.login("admin1@email.com", demoPassword), c.login("admin2@email.com", demoPassword)
	kettle := migrations.DemoProductIDs[0]
	path := "/api/v1/carts/" + shopper + "/items"
	add := map[string]any{"product_id": kettle, "quantity": 2}

	if res := h.withKey(http.MethodPost, path, admin1, "on-behalf", add); res.Code != http.StatusOK {
		t.Fatalf("the admin's add = %d %s", res.Code, res.Raw)
	}
	if res := h.withKey(http.MethodPost, path, admin1, "on-behalf", add); res.Code != http.StatusOK || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the admin's replay = %d %v %s, want the answer replayed", res.Code, res.Header, res.Raw)
	}
	const admin1ID = "00000000-0000-7000-8000-000000000001"
	if res := doJSON(t, http.MethodPatch, c.rest+"/api/v1/users/"+admin1ID, admin2, map[string]any{"is_admin": false}); res.Code != http.StatusOK {
		t.Fatalf("demoting admin1 = %d %s", res.Code, res.Raw)
	}
	res := h.withKey(http.MethodPost, path, admin1, "on-behalf", add)
	if res.Code != http.StatusForbidden || res.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the demoted admin's replay = %d %v %s, want 403, not the replayed answer", res.Code, res.Header, res.Raw)
	}
	if q := h.quantity(shopperToken, kettle); q != 2 {
		t.Errorf("the shopper's quantity %d, want 2", q)
	}
}

// TestWriteLimitAcrossReplicas runs two cart replicas on one PostgreSQL database with a limit
// of four changes per user: four adds spread over both replicas pass, and the fifth is a 429
// with Retry-After on either, over REST and gRPC; reads, and other users, are not held back.
func TestWriteLimitAcrossReplicas(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	c := startCustomers(t, "sqlite", nil)
	env := map[string]string{"CART_DATABASE_URL": dsn, "CART_WRITE_LIMIT_PER_USER": "4", "CART_WRITE_LIMIT_WINDOW": "1h"}
	replicas := []*harness{start(t, "postgres", c.grpc, env), start(t, "postgres", c.grpc, env)}
	_, _, alice := c.shopper()
	_, _, bob := c.shopper()
	mug := migrations.DemoProductIDs[1]
	const path = "/api/v1/carts/me/items"
	add := map[string]any{"product_id": mug, "quantity": 1}

	for i := range 4 {
		if res := replicas[i%2].do(http.MethodPost, path, alice, add); res.Code != http.StatusOK {
			t.Fatalf("change %d on replica %d = %d %s, want 200", i+1, i%2+1, res.Code, res.Raw)
		}
	}
	for i, h := range replicas {
		res := h.do(http.MethodPost, path, alice, add)
		if wait := retryAfter(res); res.Code != http.StatusTooManyRequests || wait < 1 || wait > 3600 {
			t.Errorf("fifth change on replica %d = %d, Retry-After %q; want 429 with Retry-After within the hour: the limit must hold across replicas",
				i+1, res.Code, res.Header.Get("Retry-After"))
		}
		if res := h.do(http.MethodDelete, path, alice, nil); res.Code != http.StatusTooManyRequests {
			t.Errorf("clearing the cart on replica %d = %d, want 429: every change counts", i+1, res.Code)
		}
		var header metadata.MD
		ctx := servicetest.WithAuthorization(servicetest.Bearer(alice))
		_, err := h.carts.AddItem(ctx, &cartv1.AddItemRequest{UserId: "me", ProductId: mug, Quantity: 1}, grpc.Header(&header))
		if status.Code(err) != codes.ResourceExhausted || len(header.Get("retry-after")) != 1 {
			t.Errorf("gRPC change on replica %d = %v, retry-after %v; want RESOURCE_EXHAUSTED with retry-after", i+1, err, header.Get("retry-after"))
		}
		if res := h.do(http.MethodGet, "/api/v1/carts/me", alice, nil); res.Code != http.StatusOK {
			t.Errorf("a read on replica %d = %d, want 200: reads are not limited", i+1, res.Code)
		}
		if res := h.do(http.MethodPost, path, bob, add); res.Code != http.StatusOK {
			t.Errorf("another user's change on replica %d = %d, want 200", i+1, res.Code)
		}
	}
	if q := replicas[0].quantity(alice, mug); q != 4 {
		t.Errorf("quantity %d, want 4: a refused change must change nothing", q)
	}
}
