// Package cartdb implements cart.Store with gorm, on PostgreSQL or SQLite. It is the only
// package that knows the table layout; rows never leave it.
package cartdb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/acme/shop/foundation/batch"
	"github.com/acme/shop/foundation/database"

	"github.com/acme/shop/cart-svc/internal/cart"
)

// productRow is a row of the products table.
type productRow struct {
	ID           string `gorm:"primaryKey"`
	Name         string
	Description  string
	PriceCents   int64
	CurrencyCode string
	CreatedAt    time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt    time.Time `gorm:"autoUpdateTime:false"`
}

func (productRow) TableName() string { return "products" }

// cartItemRow is a row of the cart_items table.
type cartItemRow struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    string
	ProductID string
	Quantity  int32
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}

func (cartItemRow) TableName() string { return "cart_items" }

// Store is the gorm implementation of cart.Store.
type Store struct {
	db    *gorm.DB
	sqlDB *sql.DB
	// carts batches the cart reads that end every cart request.
	carts *batch.Loader[string, []cart.Line]
	// The hot statements, in the database's placeholder dialect.
	cartSQL, addItemSQL string
}

// New returns a Store on db, which must have been migrated.
func New(db *gorm.DB) (*Store, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	s := &Store{
		db: db, sqlDB: sqlDB,
		cartSQL:    database.Rebind(db, cartSQL),
		addItemSQL: database.Rebind(db, addItemSQL),
	}
	fetch := batch.Each(s.readCart)
	if database.Dialect(db) == "postgres" {
		fetch = s.cartsAtOnce
	}
	s.carts = batch.New(fetch, cartBatchSize, database.LookupTimeout)
	return s, nil
}

func toProduct(r productRow) cart.Product {
	return cart.Product{
		ID: r.ID, Name: r.Name, Description: r.Description, Price: cart.Cents(r.PriceCents),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateProduct implements cart.Store.
func (s *Store) CreateProduct(ctx context.Context, p cart.Product) error {
	row := productRow{
		ID: p.ID, Name: p.Name, Description: p.Description, PriceCents: int64(p.Price),
		CurrencyCode: cart.Currency, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	return s.db.WithContext(ctx).Create(&row).Error
}

// Product implements cart.Store.
func (s *Store) Product(ctx context.Context, id string) (cart.Product, error) {
	return first(s.db.WithContext(ctx), id)
}

func first(tx *gorm.DB, id string) (cart.Product, error) {
	var row productRow
	err := tx.Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return cart.Product{}, cart.ErrProductNotFound
	}
	if err != nil {
		return cart.Product{}, err
	}
	return toProduct(row), nil
}

// ListProducts implements cart.Store. Search is a literal, case-insensitive substring: LIKE's
// wildcards in it are escaped.
func (s *Store) ListProducts(ctx context.Context, q cart.ListQuery) ([]cart.Product, error) {
	tx := s.db.WithContext(ctx).Order("id").Limit(q.Limit)
	if q.After != "" {
		tx = tx.Where("id > ?", q.After)
	}
	if q.Search != "" {
		pattern := database.ContainsPattern(q.Search)
		tx = tx.Where(`(LOWER(name) LIKE ? ESCAPE '\' OR LOWER(description) LIKE ? ESCAPE '\')`, pattern, pattern)
	}
	var rows []productRow
	if err := tx.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]cart.Product, len(rows))
	for i, r := range rows {
		out[i] = toProduct(r)
	}
	return out, nil
}

// UpdateProduct implements cart.Store.
func (s *Store) UpdateProduct(ctx context.Context, id string, name, description *string, price *cart.Cents, now time.Time) (cart.Product, error) {
	changes := map[string]any{"updated_at": now}
	if name != nil {
		changes["name"] = *name
	}
	if description != nil {
		changes["description"] = *description
	}
	if price != nil {
		changes["price_cents"] = int64(*price)
	}
	var p cart.Product
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&productRow{}).Where("id = ?", id).Updates(changes)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return cart.ErrProductNotFound
		}
		var err error
		p, err = first(tx, id)
		return err
	})
	return p, err
}

// DeleteProduct implements cart.Store. The product's cart lines go with it (ON DELETE
// CASCADE).
func (s *Store) DeleteProduct(ctx context.Context, id string) error {
	res := s.db.WithContext(ctx).Where("id = ?", id).Delete(&productRow{})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return cart.ErrProductNotFound
	}
	return nil
}

// cartBatchSize bounds the carts read by one query.
const cartBatchSize = 32

// The query every cart answer ends with: users' lines joined with their products, in
// first-added order.
const (
	cartColumns = `SELECT ci.user_id, ci.product_id, p.name, p.price_cents, ci.quantity
FROM cart_items ci JOIN products p ON p.id = ci.product_id`
	cartSQL  = cartColumns + ` WHERE ci.user_id = $1 ORDER BY ci.id`
	cartsSQL = cartColumns + ` WHERE ci.user_id = ANY($1) ORDER BY ci.id`
)

// Cart implements cart.Store. Every cart answer ends with it, so it skips gorm's reflection,
// and concurrent reads share one query (package batch). A read is only ever answered by a
// query that started after it was asked, so it sees every change committed before the call,
// the caller's own included.
func (s *Store) Cart(ctx context.Context, userID string) (cart.Cart, error) {
	lines, _, err := s.carts.Load(ctx, userID)
	if err != nil {
		return cart.Cart{}, err
	}
	// Callers that asked for the same cart in one batch got the same slice: each gets a copy.
	return cart.Cart{UserID: userID, Lines: append([]cart.Line{}, lines...)}, nil
}

// cartsAtOnce reads a batch of carts with one query (PostgreSQL); a user without lines is
// missing from the map.
func (s *Store) cartsAtOnce(ctx context.Context, userIDs []string) (map[string][]cart.Line, error) {
	rows, err := s.sqlDB.QueryContext(ctx, cartsSQL, userIDs)
	if err != nil {
		return nil, err
	}
	return scanCarts(rows, len(userIDs))
}

// readCart reads one cart (SQLite: it runs in-process, with no round trip to save, and has no
// array parameters); a cart without lines is not found.
func (s *Store) readCart(ctx context.Context, userID string) ([]cart.Line, bool, error) {
	rows, err := s.sqlDB.QueryContext(ctx, s.cartSQL, userID)
	if err != nil {
		return nil, false, err
	}
	carts, err := scanCarts(rows, 1)
	lines, found := carts[userID]
	return lines, found, err
}

func scanCarts(rows *sql.Rows, users int) (map[string][]cart.Line, error) {
	defer func() { _ = rows.Close() }()
	out := make(map[string][]cart.Line, users)
	for rows.Next() {
		var (
			userID string
			l      cart.Line
		)
		if err := rows.Scan(&userID, &l.ProductID, &l.Name, &l.UnitPrice, &l.Quantity); err != nil {
			return nil, err
		}
		out[userID] = append(out[userID], l)
	}
	return out, rows.Err()
}

// addItemSQL inserts a line or adds to the existing one in one statement, so concurrent adds
// never lose an update. The WHERE of the update refuses a sum above the limit; then no row
// comes back and nothing changed. The same SQL runs on PostgreSQL and SQLite (3.35+).
const addItemSQL = `INSERT INTO cart_items (user_id, product_id, quantity, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id, product_id) DO UPDATE
SET quantity = cart_items.quantity + excluded.quantity, updated_at = excluded.updated_at
WHERE cart_items.quantity + excluded.quantity <= $6
RETURNING quantity`

// AddItem implements cart.Store. It is the write path's hot statement, so it runs on the
// connection pool directly rather than through gorm's reflection.
func (s *Store) AddItem(ctx context.Context, userID, productID string, quantity, limit int32, now time.Time) error {
	var got int32
	err := s.sqlDB.QueryRowContext(ctx, s.addItemSQL, userID, productID, quantity, now, now, limit).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return cart.ErrQuantityLimit
	}
	// gorm translates driver errors for its own statements, not for those run on the pool.
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		err = t.Translate(err)
	}
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return cart.ErrProductNotFound
	}
	return err
}

// SetQuantity implements cart.Store.
func (s *Store) SetQuantity(ctx context.Context, userID, productID string, quantity int32, now time.Time) error {
	res := s.db.WithContext(ctx).Model(&cartItemRow{}).
		Where("user_id = ? AND product_id = ?", userID, productID).
		Updates(map[string]any{"quantity": quantity, "updated_at": now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return cart.ErrItemNotFound
	}
	return nil
}

// RemoveItem implements cart.Store.
func (s *Store) RemoveItem(ctx context.Context, userID, productID string) error {
	res := s.db.WithContext(ctx).Where("user_id = ? AND product_id = ?", userID, productID).Delete(&cartItemRow{})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return cart.ErrItemNotFound
	}
	return nil
}

// Clear implements cart.Store.
func (s *Store) Clear(ctx context.Context, userID string) error {
	return s.db.WithContext(ctx).Where("user_id = ?", userID).Delete(&cartItemRow{}).Error
}

var _ cart.Store = (*Store)(nil)
