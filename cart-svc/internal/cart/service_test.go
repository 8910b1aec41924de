package cart_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/permission"
	"github.com/acme/shop/foundation/validation"

	"github.com/acme/shop/cart-svc/internal/cart"
)

// memStore is an in-memory cart.Store for domain tests.
type memStore struct {
	mu       sync.Mutex
	products map[string]cart.Product
	lines    map[string][]cart.Line // by user, in first-added order
	erased   map[string]bool
	handled  map[string]bool
}

func newMemStore() *memStore {
	return &memStore{products: map[string]cart.Product{}, lines: map[string][]cart.Line{}, erased: map[string]bool{}, handled: map[string]bool{}}
}

func (m *memStore) Erased(_ context.Context, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.erased[userID] {
		return cart.ErrUserErased
	}
	return nil
}

func (m *memStore) CartOwners(_ context.Context, after string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, ls := range m.lines {
		if id > after && len(ls) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

func (m *memStore) Erase(_ context.Context, e cart.Erasure, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.EventID != "" && m.handled[e.EventID] {
		return true, nil
	}
	delete(m.lines, e.UserID)
	m.erased[e.UserID] = true
	if e.EventID != "" {
		m.handled[e.EventID] = true
	}
	return false, nil
}

func (m *memStore) CreateProduct(_ context.Context, p cart.Product) (cart.Product, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.products[p.ID] = p
	return p, nil
}

func (m *memStore) Product(_ context.Context, id string) (cart.Product, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.products[id]
	if !ok {
		return cart.Product{}, cart.ErrProductNotFound
	}
	return p, nil
}

func (m *memStore) ListProducts(_ context.Context, q cart.ListQuery) ([]cart.Product, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []cart.Product
	for _, p := range m.products {
		if p.ID > q.After {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (m *memStore) UpdateProduct(_ context.Context, id string, name, desc *string, price *cart.Cents, cond etag.Condition, now time.Time) (cart.Product, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.products[id]
	if !ok {
		return cart.Product{}, cart.ErrProductNotFound
	}
	if err := cond.Check(p.ETag()); err != nil {
		return cart.Product{}, err
	}
	if name != nil {
		p.Name = *name
	}
	if desc != nil {
		p.Description = *desc
	}
	if price != nil {
		p.Price = *price
	}
	p.UpdatedAt = now
	m.products[id] = p
	return p, nil
}

func (m *memStore) DeleteProduct(_ context.Context, id string, cond etag.Condition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.products[id]
	if !ok {
		return cart.ErrProductNotFound
	}
	if err := cond.Check(p.ETag()); err != nil {
		return err
	}
	delete(m.products, id)
	for u, ls := range m.lines {
		var keep []cart.Line
		for _, l := range ls {
			if l.ProductID != id {
				keep = append(keep, l)
			}
		}
		m.lines[u] = keep
	}
	return nil
}

func (m *memStore) Cart(_ context.Context, userID string) (cart.Cart, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cart(userID), nil
}

// cart is Cart with m.mu held.
func (m *memStore) cart(userID string) cart.Cart {
	c := cart.Cart{UserID: userID}
	for _, l := range m.lines[userID] {
		p := m.products[l.ProductID]
		c.Lines = append(c.Lines, cart.Line{ProductID: p.ID, Name: p.Name, UnitPrice: p.Price, Quantity: l.Quantity})
	}
	return c
}

func (m *memStore) AddItem(_ context.Context, userID, productID string, q, limit int32, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.products[productID]; !ok {
		return cart.ErrProductNotFound
	}
	for i, l := range m.lines[userID] {
		if l.ProductID == productID {
			if l.Quantity+q > limit {
				return cart.ErrQuantityLimit
			}
			m.lines[userID][i].Quantity += q
			return nil
		}
	}
	m.lines[userID] = append(m.lines[userID], cart.Line{ProductID: productID, Quantity: q})
	return nil
}

func (m *memStore) SetQuantity(_ context.Context, userID, productID string, q int32, cond etag.Condition, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.line(userID, productID, cond)
	if err != nil {
		return err
	}
	m.lines[userID][i].Quantity = q
	return nil
}

func (m *memStore) RemoveItem(_ context.Context, userID, productID string, cond etag.Condition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.line(userID, productID, cond)
	if err != nil {
		return err
	}
	m.lines[userID] = slices.Delete(m.lines[userID], i, i+1)
	return nil
}

// line checks cond against the user's cart and returns the index of productID's line in it;
// m.mu is held.
func (m *memStore) line(userID, productID string, cond etag.Condition) (int, error) {
	if err := cond.Check(m.cart(userID).ETag()); err != nil {
		return 0, err
	}
	i := slices.IndexFunc(m.lines[userID], func(l cart.Line) bool { return l.ProductID == productID })
	if i < 0 {
		return 0, cart.ErrItemNotFound
	}
	return i, nil
}

func (m *memStore) Clear(_ context.Context, userID string, cond etag.Condition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := cond.Check(m.cart(userID).ETag()); err != nil {
		return err
	}
	delete(m.lines, userID)
	return nil
}

func newService(t *testing.T) *cart.Service {
	t.Helper()
	var seq int
	svc, err := cart.NewService(newMemStore(), cart.Options{MaxQuantity: 99, NewID: func() string {
		seq++
		return fmt.Sprintf("00000000-0000-7000-8000-%012d", seq)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var (
	boss  = cart.Caller{UserID: "00000000-0000-7000-8000-00000000a001", IsAdmin: true}
	alice = cart.Caller{UserID: "00000000-0000-7000-8000-00000000a002"}
	bob   = cart.Caller{UserID: "00000000-0000-7000-8000-00000000a003"}
)

func TestCatalogRules(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	if _, err := svc.CreateProduct(ctx, alice, cart.NewProduct{Name: "X", Price: "1"}); !errors.Is(err, permission.ErrDenied) {
		t.Errorf("non-admin create error = %v", err)
	}
	// Lengths and the price's format are the proto's rules, checked before the Service is
	// called (see the grpcapi tests); a blank name is the domain's.
	_, err := svc.CreateProduct(ctx, boss, cart.NewProduct{Name: " \t ", Price: "1"})
	if diff := cmp.Diff([]string{"name"}, validation.Fields(err)); diff != "" {
		t.Errorf("blank name: fields (-want +got):\n%s", diff)
	}
	p, err := svc.CreateProduct(ctx, boss, cart.NewProduct{Name: "Kettle", Price: "42"})
	if err != nil || p.Price != 4200 {
		t.Fatalf("create = %+v, %v", p, err)
	}
	bad := "1000000.01"
	if _, err := svc.UpdateProduct(ctx, boss, p.ID, cart.ProductChanges{Price: &bad}, etag.None); !cmp.Equal(validation.Fields(err), []string{"price"}) {
		t.Errorf("update with a bad price error = %v", err)
	}
	if got, _ := svc.Product(ctx, p.ID); got.Price != 4200 {
		t.Errorf("rejected update changed the price to %v", got.Price)
	}
	if _, err := svc.UpdateProduct(ctx, bob, p.ID, cart.ProductChanges{}, etag.None); !errors.Is(err, permission.ErrDenied) {
		t.Errorf("non-admin update error = %v", err)
	}
	if err := svc.DeleteProduct(ctx, alice, p.ID, etag.None); !errors.Is(err, permission.ErrDenied) {
		t.Errorf("non-admin delete error = %v", err)
	}
}

func TestCartRules(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	kettle, _ := svc.CreateProduct(ctx, boss, cart.NewProduct{Name: "Kettle", Price: "42.10"})
	mug, _ := svc.CreateProduct(ctx, boss, cart.NewProduct{Name: "Mug", Price: "0.35"})

	if _, err := svc.Cart(ctx, bob, alice.UserID); !errors.Is(err, permission.ErrDenied) {
		t.Errorf("another user's cart error = %v", err)
	}
	if _, err := svc.AddItem(ctx, bob, alice.UserID, mug.ID, 1); !errors.Is(err, permission.ErrDenied) {
		t.Errorf("adding to another user's cart error = %v", err)
	}
	if _, err := svc.AddItem(ctx, boss, alice.UserID, mug.ID, 3); err != nil {
		t.Errorf("admin adding to a user's cart: %v", err)
	}
	c, err := svc.AddItem(ctx, alice, "me", kettle.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if c.TotalQuantity() != 5 || c.TotalPrice() != 2*4210+3*35 || c.Lines[0].ProductID != mug.ID {
		t.Errorf("cart = %+v: want mug first, 5 items, %s", c, cart.Cents(2*4210+3*35))
	}
	if _, err := svc.AddItem(ctx, alice, "me", mug.ID, 100); !cmp.Equal(validation.Fields(err), []string{"quantity"}) {
		t.Errorf("add 100 error = %v, want a quantity violation", err)
	}
	if _, err := svc.AddItem(ctx, alice, "me", mug.ID, 97); !cmp.Equal(validation.Fields(err), []string{"quantity"}) {
		t.Errorf("add past the limit error = %v", err)
	}
	if _, err := svc.AddItem(ctx, alice, "me", "00000000-0000-7000-8000-999999999999", 1); !errors.Is(err, cart.ErrProductNotFound) {
		t.Errorf("unknown product error = %v", err)
	}
	if _, err := svc.UpdateItem(ctx, alice, "me", mug.ID, 100, etag.None); !cmp.Equal(validation.Fields(err), []string{"quantity"}) {
		t.Errorf("set quantity 100 error = %v", err)
	}
	if c, _ := svc.Cart(ctx, alice, "me"); c.TotalQuantity() != 5 {
		t.Errorf("rejected changes changed the cart: %+v", c)
	}
	if _, err := svc.RemoveItem(ctx, alice, "ME", kettle.ID, etag.None); err != nil {
		t.Errorf("remove with upper-case me: %v", err)
	}
	if _, err := svc.RemoveItem(ctx, alice, "me", kettle.ID, etag.None); !errors.Is(err, cart.ErrItemNotFound) {
		t.Errorf("second remove error = %v", err)
	}
	c, err = svc.Clear(ctx, alice, alice.UserID, etag.None)
	if err != nil || len(c.Lines) != 0 || c.UserID != alice.UserID {
		t.Errorf("clear = %+v, %v", c, err)
	}
}

func TestListProductsPaging(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	for i := range 5 {
		if _, err := svc.CreateProduct(ctx, boss, cart.NewProduct{Name: fmt.Sprintf("P%d", i), Price: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	after := ""
	for {
		ps, next, err := svc.ListProducts(ctx, cart.ListQuery{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if next == "" {
			break
		}
		after = next
	}
	if diff := cmp.Diff([]string{"P0", "P1", "P2", "P3", "P4"}, names); diff != "" {
		t.Errorf("paged names (-want +got):\n%s", diff)
	}
}
