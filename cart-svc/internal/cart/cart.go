// Package cart is the cart service's domain: the product catalog, each user's cart, and who may
// do what. It knows nothing about gRPC, HTTP or SQL; it declares the Store it needs and the
// cartdb package implements it.
package cart

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/page"
	"github.com/acme/shop/foundation/permission"
	"github.com/acme/shop/foundation/validation"
)

// Product is an item of the catalog.
type Product struct {
	ID          string
	Name        string
	Description string
	Price       Cents
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ETag returns the product's entity tag: a hash of everything clients see of it. Its
// UpdatedAt changes with every write, to the microsecond the stores keep, so two states of one
// product never share a tag.
func (p Product) ETag() string {
	return etag.Of(p.ID, p.Name, p.Description, strconv.FormatInt(int64(p.Price), 10),
		strconv.FormatInt(p.CreatedAt.UnixMicro(), 10), strconv.FormatInt(p.UpdatedAt.UnixMicro(), 10))
}

// Line is one product in a cart, priced from the current catalog.
type Line struct {
	ProductID string
	Name      string
	UnitPrice Cents
	Quantity  int32
}

// Total is the line's price: unit price times quantity, exactly.
func (l Line) Total() Cents { return l.UnitPrice * Cents(l.Quantity) }

// Cart is a user's cart: their lines in the order they were first added.
type Cart struct {
	UserID string
	Lines  []Line
}

// ETag returns the cart's entity tag: a hash of its owner and of every line as clients see it
// (product, name, unit price, quantity, in order). The totals follow from the lines. Two carts
// that look the same share a tag, which is what HTTP asks of a strong validator: a client that
// holds it holds the cart as it is.
func (c Cart) ETag() string {
	parts := make([]string, 0, 1+4*len(c.Lines))
	parts = append(parts, c.UserID)
	for _, l := range c.Lines {
		parts = append(parts, l.ProductID, l.Name, strconv.FormatInt(int64(l.UnitPrice), 10), strconv.FormatInt(int64(l.Quantity), 10))
	}
	return etag.Of(parts...)
}

// TotalQuantity is the sum of the lines' quantities.
func (c Cart) TotalQuantity() int32 {
	var n int32
	for _, l := range c.Lines {
		n += l.Quantity
	}
	return n
}

// TotalPrice is the sum of the lines' totals.
func (c Cart) TotalPrice() Cents {
	var sum Cents
	for _, l := range c.Lines {
		sum += l.Total()
	}
	return sum
}

// Caller is the authenticated user a request acts for.
type Caller struct {
	UserID  string
	IsAdmin bool
}

// CartOf returns the user whose cart a request of the caller for userID (a user ID, or
// permission.Me) acts on, or permission.ErrDenied when the caller may not act on it: users act
// on their own cart, admins on anyone's.
func (c Caller) CartOf(userID string) (string, error) {
	return permission.SelfOrAdmin(c.UserID, c.IsAdmin, userID)
}

// MayEditCatalog returns nil when the caller may create, change and delete products (admins),
// and permission.ErrDenied otherwise.
func (c Caller) MayEditCatalog() error {
	if !c.IsAdmin {
		return permission.ErrDenied
	}
	return nil
}

// ProductChanges lists the fields of a product to change; nil means "leave as it is".
type ProductChanges struct {
	Name        *string
	Description *string
	Price       *string
}

// ListQuery selects a page of products.
type ListQuery struct {
	// Search is matched case-insensitively, as a literal substring, against name and
	// description.
	Search string
	// After is the ID of the last product of the previous page; empty for the first page.
	After string
	// Limit is the page size asked for: 0 for page.DefaultSize, clamped to page.MaxSize.
	// The Service asks its Store for one more, to learn whether another page follows.
	Limit int
}

// ErrQuantityLimit is returned by Store.AddItem when the line would exceed the limit.
var ErrQuantityLimit = errors.New("quantity limit exceeded")

// Store keeps products and carts. The cart package declares it; cartdb implements it.
type Store interface {
	// CreateProduct adds p to the catalog and returns it. For a repeat of a request whose
	// product was created already, a store may add none and return that product.
	CreateProduct(ctx context.Context, p Product) (Product, error)
	// Product returns the product, or ErrProductNotFound.
	Product(ctx context.Context, id string) (Product, error)
	// ListProducts returns up to q.Limit products with IDs after q.After, in ID order.
	ListProducts(ctx context.Context, q ListQuery) ([]Product, error)
	// UpdateProduct applies the changes and returns the product, or ErrProductNotFound. If the
	// product's ETag does not satisfy cond, it changes nothing and returns etag.ErrMismatch;
	// the check and the change are one atomic step (so for every conditional write below).
	UpdateProduct(ctx context.Context, id string, name, description *string, price *Cents, cond etag.Condition, now time.Time) (Product, error)
	// DeleteProduct deletes the product and every cart line of it, or returns
	// ErrProductNotFound, or etag.ErrMismatch when the product's ETag does not satisfy cond.
	DeleteProduct(ctx context.Context, id string, cond etag.Condition) error

	// Cart returns the user's lines joined with current product data, in the order the
	// products were first added.
	Cart(ctx context.Context, userID string) (Cart, error)
	// AddItem adds quantity to the user's line of the product, creating it if needed, in one
	// atomic statement. It returns ErrProductNotFound for an unknown product and
	// ErrQuantityLimit, changing nothing, when the line would exceed max. For a repeat of a
	// request whose add was made already, a store may add nothing.
	AddItem(ctx context.Context, userID, productID string, quantity, max int32, now time.Time) error
	// SetQuantity sets the quantity of an existing line, or returns ErrItemNotFound, or
	// etag.ErrMismatch when the cart's ETag does not satisfy cond.
	SetQuantity(ctx context.Context, userID, productID string, quantity int32, cond etag.Condition, now time.Time) error
	// RemoveItem deletes a line, or returns ErrItemNotFound, or etag.ErrMismatch when the
	// cart's ETag does not satisfy cond.
	RemoveItem(ctx context.Context, userID, productID string, cond etag.Condition) error
	// Clear deletes every line of the user's cart, or returns etag.ErrMismatch when the cart's
	// ETag does not satisfy cond.
	Clear(ctx context.Context, userID string, cond etag.Condition) error
	// Every write to a cart above returns ErrUserErased, changing nothing, once the cart's
	// user was erased: the writes and Erase take turns per user, so that a write either lands
	// before the erasure (and is erased) or sees it.

	// Erased returns ErrUserErased when the user was erased, else nil.
	Erased(ctx context.Context, userID string) error
	// Erase deletes everything cart holds of a deleted user (their lines, and every recorded
	// answer holding their cart), records the tombstone and, unless e.EventID is empty, the
	// event as handled, all in one transaction. It reports a duplicate, changing nothing, when
	// the event was handled before.
	Erase(ctx context.Context, e Erasure, now time.Time) (duplicate bool, err error)
	// CartOwners returns up to limit IDs of users who have a cart line, after the ID after,
	// in ID order.
	CartOwners(ctx context.Context, after string, limit int) ([]string, error)
}

// Users says which users exist; the customers service does (cart's customers client).
type Users interface {
	// ExistingUsers returns those of ids whose users exist.
	ExistingUsers(ctx context.Context, ids []string) ([]string, error)
}

// reconcileBatch is how many cart owners Reconcile asks about at once (at most the 1,000 of
// ExistingUsersRequest).
const reconcileBatch = 500

// Erasure asks cart to erase a deleted user's data.
type Erasure struct {
	// EventID is the UserDeleted event's id; empty for an erasure that reconcile found.
	EventID string
	// UserID is the deleted user.
	UserID string
}

// Options tunes a Service.
type Options struct {
	// MaxQuantity is the largest quantity of one line.
	MaxQuantity int32
	// Now returns the current time; time.Now by default.
	Now func() time.Time
	// NewID returns a new unique ID (a UUIDv7) for products.
	NewID func() string
}

// Service carries out the catalog and cart use cases and enforces who may do what.
type Service struct {
	store  Store
	maxQty int32
	now    func() time.Time
	newID  func() string
}

// NewService returns a Service.
func NewService(store Store, opts Options) (*Service, error) {
	if opts.MaxQuantity < 1 || opts.NewID == nil {
		return nil, errors.New("cart: MaxQuantity and NewID are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{
		store: store, maxQty: opts.MaxQuantity, newID: opts.NewID,
		now: func() time.Time { return opts.Now().UTC().Truncate(time.Microsecond) },
	}, nil
}

// checkName is the one rule on a product's name that the protovalidate rules of
// cart/v1/product.proto cannot say; they check the lengths of the name and the description,
// and the price's format and range, before a request reaches the Service.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return validation.Fail("name", "must not be blank")
	}
	return nil
}

// parsePrice turns the request's decimal into Cents. The proto's rules let only prices that
// parse through.
func parsePrice(s string) (Cents, error) {
	c, err := ParsePrice(s)
	if err != nil {
		return 0, validation.Fail("price", "must be a decimal greater than 0 and at most "+Cents(MaxPriceCents).String()+", with at most two fraction digits")
	}
	return c, nil
}

// NewProduct holds the fields of a new product.
type NewProduct struct {
	Name, Description, Price string
}

// CreateProduct adds a product to the catalog. Admins only.
func (s *Service) CreateProduct(ctx context.Context, caller Caller, in NewProduct) (Product, error) {
	if err := caller.MayEditCatalog(); err != nil {
		return Product{}, err
	}
	if err := checkName(in.Name); err != nil {
		return Product{}, err
	}
	price, err := parsePrice(in.Price)
	if err != nil {
		return Product{}, err
	}
	now := s.now()
	return s.store.CreateProduct(ctx, Product{ID: s.newID(), Name: in.Name, Description: in.Description, Price: price, CreatedAt: now, UpdatedAt: now})
}

// Product returns a product. Public.
func (s *Service) Product(ctx context.Context, id string) (Product, error) {
	return s.store.Product(ctx, strings.ToLower(id))
}

// ListProducts returns a page of products and the ID to continue after ("" on the last page).
// Public.
func (s *Service) ListProducts(ctx context.Context, q ListQuery) ([]Product, string, error) {
	return page.Fetch(q.Limit, func(limit int) ([]Product, error) {
		q.Limit = limit
		return s.store.ListProducts(ctx, q)
	}, func(p Product) string { return p.ID })
}

// UpdateProduct changes the fields present in c if the product's ETag satisfies cond (else
// etag.ErrMismatch). Admins only.
func (s *Service) UpdateProduct(ctx context.Context, caller Caller, id string, c ProductChanges, cond etag.Condition) (Product, error) {
	if err := caller.MayEditCatalog(); err != nil {
		return Product{}, err
	}
	id = strings.ToLower(id)
	if c.Name == nil && c.Description == nil && c.Price == nil {
		p, err := s.store.Product(ctx, id)
		if err != nil {
			return Product{}, err
		}
		if err := cond.Check(p.ETag()); err != nil {
			return Product{}, err
		}
		return p, nil
	}
	if c.Name != nil {
		if err := checkName(*c.Name); err != nil {
			return Product{}, err
		}
	}
	var price *Cents
	if c.Price != nil {
		p, err := parsePrice(*c.Price)
		if err != nil {
			return Product{}, err
		}
		price = &p
	}
	return s.store.UpdateProduct(ctx, id, c.Name, c.Description, price, cond, s.now())
}

// DeleteProduct removes a product from the catalog and from every cart if its ETag satisfies
// cond (else etag.ErrMismatch). Admins only.
func (s *Service) DeleteProduct(ctx context.Context, caller Caller, id string, cond etag.Condition) error {
	if err := caller.MayEditCatalog(); err != nil {
		return err
	}
	return s.store.DeleteProduct(ctx, strings.ToLower(id), cond)
}

// Cart returns a user's cart, empty if they have none yet, or ErrUserErased once the user was
// deleted.
func (s *Service) Cart(ctx context.Context, caller Caller, userID string) (Cart, error) {
	id, err := caller.CartOf(userID)
	if err != nil {
		return Cart{}, err
	}
	if err := s.store.Erased(ctx, id); err != nil {
		return Cart{}, err
	}
	return s.store.Cart(ctx, id)
}

// Reconcile erases the carts of users that do not exist (any more), as their UserDeleted
// event would have: the safety net for carts of users deleted before events existed, or
// whose event was lost with a purged stream. It asks users about every cart owner, a batch at
// a time, erases only those users says are gone, and stops at the first error. It returns
// how many it erased.
func (s *Service) Reconcile(ctx context.Context, users Users) (int, error) {
	after, erased := "", 0
	for {
		owners, err := s.store.CartOwners(ctx, after, reconcileBatch)
		if err != nil || len(owners) == 0 {
			return erased, err
		}
		existing, err := users.ExistingUsers(ctx, owners)
		if err != nil {
			return erased, err
		}
		exists := make(map[string]bool, len(existing))
		for _, id := range existing {
			exists[strings.ToLower(id)] = true
		}
		for _, id := range owners {
			if exists[id] {
				continue
			}
			if _, err := s.store.Erase(ctx, Erasure{UserID: id}, s.now()); err != nil {
				return erased, err
			}
			erased++
		}
		if len(owners) < reconcileBatch {
			return erased, nil
		}
		after = owners[len(owners)-1]
	}
}

// Erase erases a deleted user's cart data (Store.Erase), and reports whether the event was a
// duplicate. Only events and reconcile call it; no caller's request reaches it.
func (s *Service) Erase(ctx context.Context, e Erasure) (duplicate bool, err error) {
	return s.store.Erase(ctx, e, s.now())
}

// checkQuantity checks the configurable upper limit of a line's quantity; the proto's rules
// already require at least 1.
func (s *Service) checkQuantity(q int32) error {
	if q > s.maxQty {
		return validation.Fail("quantity", fmt.Sprintf("must be at most %d", s.maxQty))
	}
	return nil
}

// AddItem adds quantity of a product to a cart, merging with the line already there. A
// resulting quantity above the limit is a ValidationError and changes nothing.
func (s *Service) AddItem(ctx context.Context, caller Caller, userID, productID string, quantity int32) (Cart, error) {
	id, err := caller.CartOf(userID)
	if err != nil {
		return Cart{}, err
	}
	if err := s.checkQuantity(quantity); err != nil {
		return Cart{}, err
	}
	err = s.store.AddItem(ctx, id, strings.ToLower(productID), quantity, s.maxQty, s.now())
	if errors.Is(err, ErrQuantityLimit) {
		return Cart{}, validation.Fail("quantity", fmt.Sprintf("would make the line's quantity exceed %d", s.maxQty))
	}
	if err != nil {
		return Cart{}, err
	}
	return s.store.Cart(ctx, id)
}

// UpdateItem sets the quantity of a product already in the cart, if the cart's ETag satisfies
// cond (else etag.ErrMismatch).
func (s *Service) UpdateItem(ctx context.Context, caller Caller, userID, productID string, quantity int32, cond etag.Condition) (Cart, error) {
	id, err := caller.CartOf(userID)
	if err != nil {
		return Cart{}, err
	}
	if err := s.checkQuantity(quantity); err != nil {
		return Cart{}, err
	}
	if err := s.store.SetQuantity(ctx, id, strings.ToLower(productID), quantity, cond, s.now()); err != nil {
		return Cart{}, err
	}
	return s.store.Cart(ctx, id)
}

// RemoveItem takes a product out of the cart, if the cart's ETag satisfies cond (else
// etag.ErrMismatch).
func (s *Service) RemoveItem(ctx context.Context, caller Caller, userID, productID string, cond etag.Condition) (Cart, error) {
	id, err := caller.CartOf(userID)
	if err != nil {
		return Cart{}, err
	}
	if err := s.store.RemoveItem(ctx, id, strings.ToLower(productID), cond); err != nil {
		return Cart{}, err
	}
	return s.store.Cart(ctx, id)
}

// Clear empties a cart, if its ETag satisfies cond (else etag.ErrMismatch).
func (s *Service) Clear(ctx context.Context, caller Caller, userID string, cond etag.Condition) (Cart, error) {
	id, err := caller.CartOf(userID)
	if err != nil {
		return Cart{}, err
	}
	if err := s.store.Clear(ctx, id, cond); err != nil {
		return Cart{}, err
	}
	return Cart{UserID: id}, nil
}
