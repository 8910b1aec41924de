package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/events"
	"github.com/acme/shop/foundation/events/eventstest"
	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/telemetry/telemetrytest"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"

	"github.com/acme/shop/cart-svc/internal/migrations"
)

// eventShop is customers and cart on databases of one dialect, with a real NATS server between
// them, and cart's database open to the test.
type eventShop struct {
	t       *testing.T
	nats    *eventstest.Server
	c       *customers
	h       *harness
	cartEnv map[string]string
	db      *gorm.DB
	admin   string
}

// startEventShop starts NATS, customers and cart on the dialect.
func startEventShop(t *testing.T, dialect string) *eventShop {
	t.Helper()
	s := &eventShop{t: t, nats: eventstest.Start(t)}
	s.c = startCustomers(t, dialect, map[string]string{"CUSTOMERS_NATS_URL": s.nats.URL})
	s.cartEnv = map[string]string{"CART_NATS_URL": s.nats.URL}
	cfg := database.Config{SQLitePath: filepath.Join(t.TempDir(), "cart.db")}
	s.cartEnv["CART_SQLITE_PATH"] = cfg.SQLitePath
	if dialect == "postgres" {
		cfg.DSN = dbtest.PostgresDSN(t)
		s.cartEnv["CART_DATABASE_URL"] = cfg.DSN
	}
	s.h = s.startCart()
	db, err := database.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	s.db = db
	s.admin = s.c.login("admin1@email.com", demoPassword)
	return s
}

// startCart starts (another) cart on the shop's cart database.
func (s *eventShop) startCart() *harness {
	s.t.Helper()
	return start(s.t, "", s.c.grpc, s.cartEnv)
}

// shopperWithCart registers a user whose cart has a line they added and one an admin added
// with an Idempotency-Key (an answer holding the cart, recorded under the admin's key).
func (s *eventShop) shopperWithCart(h *harness) (id, token, adminKey string) {
	s.t.Helper()
	_, id, token = s.c.shopper()
	if res := h.do(http.MethodPost, "/api/v1/carts/me/items", token, map[string]any{"product_id": migrations.DemoProductIDs[0], "quantity": 1}); res.Code != http.StatusOK {
		s.t.Fatalf("add: %d %s", res.Code, res.Raw)
	}
	adminKey = uuid.NewString()
	if res := h.withKey(http.MethodPost, "/api/v1/carts/"+id+"/items", s.admin, adminKey, map[string]any{"product_id": migrations.DemoProductIDs[1], "quantity": 2}); res.Code != http.StatusOK {
		s.t.Fatalf("admin add: %d %s", res.Code, res.Raw)
	}
	return id, token, adminKey
}

// deleteSelf deletes the user of token, who has the shopper's password, at customers.
func (s *eventShop) deleteSelf(token string) {
	s.t.Helper()
	res := doJSON(s.t, http.MethodDelete, s.c.rest+"/api/v1/users/me", token, map[string]any{"current_password": "shopperPass1"})
	if res.Code != http.StatusNoContent {
		s.t.Fatalf("delete user: %d %s", res.Code, res.Raw)
	}
}

// waitErased waits until the user's cart is gone for an admin (404), then checks that cart's
// database holds nothing of them: no line, no recorded answer.
func (s *eventShop) waitErased(h *harness, id string) {
	s.t.Helper()
	poll.Until(s.t, func() error {
		if res := h.do(http.MethodGet, "/api/v1/carts/"+id, s.admin, nil); res.Code != http.StatusNotFound {
			return fmt.Errorf("GET the deleted user's cart as an admin: %d, want 404", res.Code)
		}
		return nil
	})
	s.checkNothingLeft(id)
}

// checkNothingLeft fails the test if cart's database holds a line of the user or an answer
// that mentions them.
func (s *eventShop) checkNothingLeft(id string) {
	s.t.Helper()
	var lines, keys int64
	if err := s.db.Table("cart_items").Where("user_id = ?", id).Count(&lines).Error; err != nil {
		s.t.Fatal(err)
	}
	if err := s.db.Table("idempotency_keys").Where("caller = ? OR reference = ?", id, id).Count(&keys).Error; err != nil {
		s.t.Fatal(err)
	}
	if lines != 0 || keys != 0 {
		s.t.Errorf("after the erasure of %s: %d cart lines and %d recorded answers left, want none", id, lines, keys)
	}
}

// eventCount is cart_events_total{type="user.deleted",result} as h serves it.
func eventCount(t testing.TB, h *harness, result string) float64 {
	t.Helper()
	return telemetrytest.Value(telemetrytest.Scrape(t, h.metrics), "cart_events_total", map[string]string{"type": "user.deleted", "result": result})
}

// TestDeletingAUserErasesTheirCart deletes a user at customers and waits for cart to erase
// every line of theirs and every recorded answer holding their cart (an admin's too); then
// the cart is a 404 for the admin, to read and to write, and the admin's retry with the same
// Idempotency-Key replays nothing.
func TestDeletingAUserErasesTheirCart(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := startEventShop(t, dialect)
		id, token, adminKey := s.shopperWithCart(s.h)
		_, _, other := s.c.shopper()
		if res := s.h.do(http.MethodPost, "/api/v1/carts/me/items", other, map[string]any{"product_id": migrations.DemoProductIDs[0], "quantity": 3}); res.Code != http.StatusOK {
			t.Fatalf("add: %d %s", res.Code, res.Raw)
		}
		s.deleteSelf(token)
		s.waitErased(s.h, id)

		add := map[string]any{"product_id": migrations.DemoProductIDs[1], "quantity": 2}
		if res := s.h.withKey(http.MethodPost, "/api/v1/carts/"+id+"/items", s.admin, adminKey, add); res.Code != http.StatusNotFound {
			t.Errorf("the admin's retry of the add with its key: %d %s, want 404", res.Code, res.Raw)
		}
		for _, req := range []struct{ method, path string }{
			{http.MethodPost, "/api/v1/carts/" + id + "/items"},
			{http.MethodPatch, "/api/v1/carts/" + id + "/items/" + migrations.DemoProductIDs[0]},
			{http.MethodDelete, "/api/v1/carts/" + id + "/items/" + migrations.DemoProductIDs[0]},
			{http.MethodDelete, "/api/v1/carts/" + id + "/items"},
		} {
			if res := s.h.do(req.method, req.path, s.admin, add); res.Code != http.StatusNotFound {
				t.Errorf("%s %s as an admin after the erasure: %d %s, want 404", req.method, req.path, res.Code, res.Raw)
			}
		}
		s.checkNothingLeft(id)
		if res := s.h.do(http.MethodGet, "/api/v1/carts/me", other, nil); res.Code != http.StatusOK || len(res.JSON["items"].([]any)) != 1 {
			t.Errorf("another user's cart after the erasure: %d %s, want their line", res.Code, res.Raw)
		}
		if got := eventCount(t, s.h, "applied"); got != 1 {
			t.Errorf("cart_events_total{result=applied} = %v, want 1", got)
		}
	})
}

// TestErasureSurvivesOutages deletes users while a part is down, and sees each erased once
// it is back: cart stopped, NATS stopped, and customers killed (SIGKILL) before it could
// publish what it committed.
func TestErasureSurvivesOutages(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := startEventShop(t, dialect)

		t.Run("cart stopped during the deletion", func(t *testing.T) {
			id, token, _ := s.shopperWithCart(s.h)
			if err := s.h.svc.Stop(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			s.deleteSelf(token)
			s.h = s.startCart()
			s.waitErased(s.h, id)
		})

		t.Run("NATS stopped during the deletion", func(t *testing.T) {
			id, token, _ := s.shopperWithCart(s.h)
			s.nats.Stop()
			s.deleteSelf(token)
			s.nats.Start()
			s.waitErased(s.h, id)
		})

		t.Run("customers killed between its commit and the publication", func(t *testing.T) {
			// With NATS down, the relay cannot publish: the deletion has committed with its
			// event, which only the outbox holds when customers dies.
			id, token, _ := s.shopperWithCart(s.h)
			s.nats.Stop()
			s.deleteSelf(token)
			s.c.kill()
			s.nats.Start()
			s.c.start()
			s.waitErased(s.h, id)
		})
	})
}

// TestEventsHaveOneEffect delivers one UserDeleted twice (under two message ids, past
// JetStream's duplicate window), and a message that is not one: the first erases once and the
// repeat is counted a duplicate; the other is dead-lettered and counted, and the consumer
// goes on.
func TestEventsHaveOneEffect(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := startEventShop(t, dialect)
		// A user cart knows and customers does not: the event is published by hand.
		id := uuid.NewString()
		if res := s.h.do(http.MethodPost, "/api/v1/carts/"+id+"/items", s.admin, map[string]any{"product_id": migrations.DemoProductIDs[0], "quantity": 1}); res.Code != http.StatusOK {
			t.Fatalf("admin add: %d %s", res.Code, res.Raw)
		}
		js := jetStream(t, s.nats.URL)
		data, err := proto.Marshal(&customersv1.UserDeleted{EventId: uuid.NewString(), UserId: id, DeletedAt: timestamppb.Now()})
		if err != nil {
			t.Fatal(err)
		}
		publish(t, js, events.UserDeletedSubject, uuid.NewString(), data)
		publish(t, js, events.UserDeletedSubject, uuid.NewString(), data)
		publish(t, js, events.UserDeletedSubject, uuid.NewString(), []byte("not a UserDeleted"))
		s.waitErased(s.h, id)
		poll.Until(t, func() error {
			applied, dup, dead := eventCount(t, s.h, "applied"), eventCount(t, s.h, "duplicate"), eventCount(t, s.h, "dead_letter")
			if applied != 1 || dup != 1 || dead != 1 {
				return fmt.Errorf("cart_events_total: applied %v, duplicate %v, dead_letter %v; want 1 each", applied, dup, dead)
			}
			return nil
		})
		dl, err := js.Stream(context.Background(), events.DeadLetterStream)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := dl.GetLastMsgForSubject(context.Background(), events.DeadLetterPrefix+"cart-user-deleted")
		if err != nil {
			t.Fatalf("the dead letter: %v", err)
		}
		if string(msg.Data) != "not a UserDeleted" || msg.Header.Get(events.ReasonHeader) == "" {
			t.Errorf("dead letter %q with reason %q; want the message and a reason", msg.Data, msg.Header.Get(events.ReasonHeader))
		}
	})
}

// TestTwoCartReplicasApplyEachEventOnce runs two cart replicas on one database, both consuming
// with the one durable consumer: every deletion is erased, and applied once in all.
func TestTwoCartReplicasApplyEachEventOnce(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		if dialect != "postgres" {
			t.Skip("one SQLite file has one cart process")
		}
		s := startEventShop(t, dialect)
		second := s.startCart()
		const users = 10
		ids := make([]string, users)
		for i := range ids {
			var token string
			ids[i], token, _ = s.shopperWithCart(s.h)
			s.deleteSelf(token)
		}
		for _, id := range ids {
			s.waitErased(second, id)
		}
		poll.Until(t, func() error {
			if got := eventCount(t, s.h, "applied") + eventCount(t, second, "applied"); got != users {
				return fmt.Errorf("events applied by both replicas: %v, want %d", got, users)
			}
			return nil
		})
	})
}

// TestWritesRacingTheErasureNeverSurviveIt adds to a cart from several clients while its user
// is deleted, many times over: once the erasure is seen, no line of the user is left, whatever
// the order, because the writes and the erasure take turns per user.
func TestWritesRacingTheErasureNeverSurviveIt(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := startEventShop(t, dialect)
		for range 20 {
			_, id, token := s.c.shopper()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						res := s.h.do(http.MethodPost, "/api/v1/carts/"+id+"/items", s.admin, map[string]any{"product_id": migrations.DemoProductIDs[w], "quantity": 1})
						if res.Code != http.StatusOK && res.Code != http.StatusNotFound {
							t.Errorf("add while the user is deleted: %d %s", res.Code, res.Raw)
							return
						}
					}
				})
			}
			s.deleteSelf(token)
			s.waitErased(s.h, id)
			close(stop)
			wg.Wait()
			s.checkNothingLeft(id)
		}
	})
}

// jetStream connects to the NATS server at url until the test ends.
func jetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publish publishes data to subject with the message id, and waits for JetStream's ack.
func publish(t testing.TB, js jetstream.JetStream, subject, id string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject, data, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
}

// kill ends customers with SIGKILL: no shutdown runs.
func (c *customers) kill() {
	c.t.Helper()
	c.proxy.Forward("")
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// TestReconcileErasesOnlyCartsOfMissingUsers fills the carts of an existing user and of a user
// customers never had (as a cart left by a deletion whose event was lost), runs
// `cart-svc reconcile`, and sees the second erased and nothing else touched.
func TestReconcileErasesOnlyCartsOfMissingUsers(t *testing.T) {
	dbtest.EachDialect(t, func(t *testing.T, dialect string) {
		s := startEventShop(t, dialect)
		_, _, token := s.c.shopper()
		if res := s.h.do(http.MethodPost, "/api/v1/carts/me/items", token, map[string]any{"product_id": migrations.DemoProductIDs[0], "quantity": 2}); res.Code != http.StatusOK {
			t.Fatalf("add: %d %s", res.Code, res.Raw)
		}
		gone := uuid.NewString()
		if res := s.h.do(http.MethodPost, "/api/v1/carts/"+gone+"/items", s.admin, map[string]any{"product_id": migrations.DemoProductIDs[1], "quantity": 1}); res.Code != http.StatusOK {
			t.Fatalf("admin add: %d %s", res.Code, res.Raw)
		}
		var before int64
		if err := s.db.Table("cart_items").Where("user_id <> ?", gone).Count(&before).Error; err != nil {
			t.Fatal(err)
		}

		env := map[string]string{"APP_ENV": "development", "CART_CUSTOMERS_ADDR": s.c.grpc}
		maps.Copy(env, s.cartEnv)
		delete(env, "CART_NATS_URL")
		logs := &servicetest.LogBuffer{}
		if err := service.Command(t.Context(), spec, []string{"reconcile"}, service.Process{LookupEnv: envconf.Map(env), Stdout: logs}); err != nil {
			t.Fatalf("cart-svc reconcile: %v\n%s", err, logs)
		}

		if res := s.h.do(http.MethodGet, "/api/v1/carts/"+gone, s.admin, nil); res.Code != http.StatusNotFound {
			t.Errorf("the cart of a user customers does not have, after reconcile: %d %s, want 404", res.Code, res.Raw)
		}
		s.checkNothingLeft(gone)
		var after int64
		if err := s.db.Table("cart_items").Count(&after).Error; err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Errorf("cart lines of existing users: %d after reconcile, %d before", after, before)
		}
		if res := s.h.do(http.MethodGet, "/api/v1/carts/me", token, nil); res.Code != http.StatusOK || len(res.JSON["items"].([]any)) != 1 {
			t.Errorf("an existing user's cart after reconcile: %d %s, want their line", res.Code, res.Raw)
		}
	})
}

// TestErasureWaitsForCartsDatabase stops cart's PostgreSQL before a deletion and keeps it down
// until the event has failed and been redelivered after its back-off: once the database is
// back, the redelivery erases the cart. The message is never given up.
func TestErasureWaitsForCartsDatabase(t *testing.T) {
	cluster := dbtest.NewCluster(t)
	s := &eventShop{t: t, nats: eventstest.Start(t)}
	s.c = startCustomers(t, "sqlite", map[string]string{"CUSTOMERS_NATS_URL": s.nats.URL})
	s.cartEnv = map[string]string{"CART_NATS_URL": s.nats.URL, "CART_DATABASE_URL": cluster.DSN()}
	s.h = s.startCart()
	s.admin = s.c.login("admin1@email.com", demoPassword)
	id, token, _ := s.shopperWithCart(s.h)

	cluster.Stop()
	s.deleteSelf(token)
	poll.Until(t, func() error {
		if n := eventCount(t, s.h, "error"); n < 2 {
			return fmt.Errorf("failed deliveries of the event with cart's database down: %v, want a redelivery after the back-off", n)
		}
		return nil
	})
	cluster.Start()
	db, err := database.Open(context.Background(), database.Config{DSN: cluster.DSN()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	s.db = db
	s.waitErased(s.h, id)
}
