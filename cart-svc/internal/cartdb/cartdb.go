// Package cartdb implements cart.Store with gorm, on PostgreSQL or SQLite. It is the only
// package that knows the table layout; rows never leave it.
package cartdb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

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
	// cartSQL is the hot query, in the database's placeholder dialect.
	cartSQL string
}

// New returns a Store on db, which must have been migrated.
func New(db *gorm.DB) (*Store, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	return &Store{db: db, sqlDB: sqlDB, cartSQL: database.Rebind(db, cartSQL)}, nil
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

// cartSQL reads a cart: the user's lines joined with their products, in first-added order.
const cartSQL = `SELECT ci.product_id, p.name, p.price_cents, ci.quantity
FROM cart_items ci JOIN products p ON p.id = ci.product_id
WHERE ci.user_id = $1
ORDER BY ci.id`

// Cart implements cart.Store: one query. Every cart answer ends with it, so it skips gorm's
// reflection and runs one prepared statement on the connection pool directly.
func (s *Store) Cart(ctx context.Context, userID string) (cart.Cart, error) {
	rows, err := s.sqlDB.QueryContext(ctx, s.cartSQL, userID)
	if err != nil {
		return cart.Cart{}, err
	}
	defer func() { _ = rows.Close() }()
	c := cart.Cart{UserID: userID, Lines: []cart.Line{}}
	for rows.Next() {
		var l cart.Line
		if err := rows.Scan(&l.ProductID, &l.Name, &l.UnitPrice, &l.Quantity); err != nil {
			return cart.Cart{}, err
		}
		c.Lines = append(c.Lines, l)
	}
	return c, rows.Err()
}

// addItemSQL inserts a line or adds to the existing one in one statement, so concurrent adds
// never lose an update. The WHERE of the update refuses a sum above the limit; then no row
// comes back and nothing changed. The same SQL runs on PostgreSQL and SQLite (3.35+).
const addItemSQL = `INSERT INTO cart_items (user_id, product_id, quantity, created_at, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (user_id, product_id) DO UPDATE
SET quantity = cart_items.quantity + excluded.quantity, updated_at = excluded.updated_at
WHERE cart_items.quantity + excluded.quantity <= ?
RETURNING quantity`

// AddItem implements cart.Store.
func (s *Store) AddItem(ctx context.Context, userID, productID string, quantity, limit int32, now time.Time) error {
	var got []int32
	err := s.db.WithContext(ctx).Raw(addItemSQL, userID, productID, quantity, now, now, limit).Scan(&got).Error
	// gorm translates driver errors for its own statements, not for raw SQL's.
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		err = t.Translate(err)
	}
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return cart.ErrProductNotFound
	}
	if err != nil {
		return err
	}
	if len(got) == 0 {
		return cart.ErrQuantityLimit
	}
	return nil
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
