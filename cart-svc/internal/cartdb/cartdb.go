// Package cartdb implements cart.Store with gorm, on PostgreSQL or SQLite. It is the only
// package that knows the table layout; rows never leave it.
//
// The row types are the one description of the tables here (the migrations keep their own
// frozen copies), and every statement goes through gorm. gorm writes them from the row types,
// except the ones on every cart or catalog request's path, written in SQL beside the row types
// with gorm's ? placeholders: AddItem's upsert, which gorm runs and whose errors it translates,
// and the cart read and the catalog list, database.Query reads: bound by gorm once, then run on
// gorm's connection pool with no gorm statement built per call, their rows scanned by hand.
package cartdb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/acme/shop/foundation/batch"
	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/page"

	"github.com/acme/shop/cart-svc/internal/cart"
)

// productRow is a row of the products table. Its currency_code column keeps its default,
// cart.Currency.
type productRow struct {
	ID          string `gorm:"primaryKey"`
	Name        string
	Description string
	PriceCents  int64
	database.Timestamps
}

func (productRow) TableName() string { return "products" }

// cartItemRow is a row of the cart_items table.
type cartItemRow struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    string
	ProductID string
	Quantity  int32
	database.Timestamps
}

func (cartItemRow) TableName() string { return "cart_items" }

// erasedUserRow is a row of the erased_users table: a tombstone.
type erasedUserRow struct {
	UserID   string `gorm:"primaryKey"`
	ErasedAt time.Time
}

func (erasedUserRow) TableName() string { return "erased_users" }

// handledEventRow is a row of the handled_events table.
type handledEventRow struct {
	ID        string `gorm:"primaryKey"`
	HandledAt time.Time
}

func (handledEventRow) TableName() string { return "handled_events" }

// cartLinesSQL reads users' cart lines joined with their products, in first-added order: the
// query every cart answer ends with. cartSQL reads one user's lines; cartsSQL (PostgreSQL)
// reads a batch of users' lines at once, the users' IDs as one array.
const (
	cartLinesSQL = `SELECT ci.user_id, ci.product_id, p.name, p.price_cents, ci.quantity
FROM cart_items ci JOIN products p ON p.id = ci.product_id`
	cartSQL  = cartLinesSQL + ` WHERE ci.user_id = ? ORDER BY ci.id`
	cartsSQL = cartLinesSQL + ` WHERE ci.user_id = ANY(?) ORDER BY ci.id`
)

// scanCartLines reads the rows of cartLinesSQL into each user's lines.
func scanCartLines(rows *sql.Rows, users int) (map[string][]cart.Line, error) {
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

// The catalog list, one query per shape of the page asked for (after a cursor or from the
// start, searched or not), so that each has a plan of its own: all of them walk the primary
// key in order, from the cursor on, and stop at the limit. One query with NULL-able
// parameters would not: PostgreSQL's generic plan for it can only filter on the cursor, so
// it reads every row before the cursor. A search is matched against a pattern from
// database.ContainsPattern, given twice.
const (
	listSQL         = `SELECT id, name, description, price_cents, created_at, updated_at FROM products`
	searchCondition = `(LOWER(name) LIKE ? ESCAPE '\' OR LOWER(description) LIKE ? ESCAPE '\')`
	listOrder       = ` ORDER BY id LIMIT ?`

	listFirstSQL   = listSQL + listOrder
	listAfterSQL   = listSQL + ` WHERE id > ?` + listOrder
	searchFirstSQL = listSQL + ` WHERE ` + searchCondition + listOrder
	searchAfterSQL = listSQL + ` WHERE id > ? AND ` + searchCondition + listOrder
)

// scanProducts reads the rows of listSQL, expecting up to limit of them.
func scanProducts(rows *sql.Rows, limit int) ([]cart.Product, error) {
	defer func() { _ = rows.Close() }()
	out := make([]cart.Product, 0, min(limit, page.MaxSize+1))
	for rows.Next() {
		var p cart.Product
		if err := rows.Scan(&p.ID, &p.Name, &p.Description, &p.Price, &p.CreatedAt, &p.UpdatedAt); err != nil {
			return nil, err
		}
		p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// addItemSQL inserts a line or adds to the existing one in one statement, so concurrent adds
// never lose an update. The WHERE of the update refuses a sum above the limit; then no row
// changes. PostgreSQL runs it after taking the user's lock and checking the tombstone
// (lockUser). Arguments: user, product, quantity, created, updated, limit.
//
// addItemSQLiteSQL is the same for SQLite, checking the tombstone itself, in the same
// statement: SQLite's one connection runs one statement at a time, so no erasure comes between
// the check and the write, and no transaction around them holds that connection for every
// round trip. Arguments: user, product, quantity, created, updated, user, limit.
const (
	addItemSQL = `INSERT INTO cart_items (user_id, product_id, quantity, created_at, updated_at)
VALUES (?, ?, ?, ?, ?)` + addItemUpsert
	addItemSQLiteSQL = `INSERT INTO cart_items (user_id, product_id, quantity, created_at, updated_at)
SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM erased_users WHERE user_id = ?)` + addItemUpsert
	addItemUpsert = `
ON CONFLICT (user_id, product_id) DO UPDATE
SET quantity = cart_items.quantity + excluded.quantity, updated_at = excluded.updated_at
WHERE cart_items.quantity + excluded.quantity <= ?`
)

// Store is the gorm implementation of cart.Store.
type Store struct {
	db *gorm.DB
	// carts batches the cart reads that end every cart request.
	carts *batch.Loader[string, []cart.Line]
	// cartQuery and cartsQuery are cartSQL and cartsSQL.
	cartQuery, cartsQuery database.Query
	// listQuery, listAfterQuery, searchQuery and searchAfterQuery are the catalog list's
	// listFirstSQL, listAfterSQL, searchFirstSQL and searchAfterSQL.
	listQuery, listAfterQuery, searchQuery, searchAfterQuery database.Query
	// commit makes the writes that a request makes once (CommitWith).
	commit Commit
	// forget deletes, in an erasure's transaction, what else holds the user's data (ForgetWith).
	forget func(tx *gorm.DB, userID string) error
}

// Commit commits write, a write that a request makes once (CreateProduct's insert, AddItem's
// add), on db: it runs write in a transaction, together with writes of its own, and returns the
// reference that write returns (the new product's ID; "" for an add). When an earlier attempt
// at the same request has committed its write, a Commit may instead write nothing and return
// that write's reference: the store then answers from what is stored.
type Commit func(ctx context.Context, db *gorm.DB, write func(tx *gorm.DB) (ref string, err error)) (string, error)

// commitAsIs is the Commit of a Store that was given none: write runs on db as it is.
func commitAsIs(_ context.Context, db *gorm.DB, write func(tx *gorm.DB) (string, error)) (string, error) {
	return write(db)
}

// New returns a Store on db, which must have been migrated.
func New(db *gorm.DB) (*Store, error) {
	s := &Store{
		db:        db,
		cartQuery: database.NewQuery(db, cartSQL), cartsQuery: database.NewQuery(db, cartsSQL),
		listQuery: database.NewQuery(db, listFirstSQL), listAfterQuery: database.NewQuery(db, listAfterSQL),
		searchQuery: database.NewQuery(db, searchFirstSQL), searchAfterQuery: database.NewQuery(db, searchAfterSQL),
		commit: commitAsIs,
		forget: func(*gorm.DB, string) error { return nil },
	}
	s.carts = database.Lookups(db, s.readCart, s.cartsAtOnce, cartBatchSize)
	return s, nil
}

// ObserveBatches has f called with the number of keys of every batched query of the
// cart reads (a metric of the batch sizes). Call it before the store is used.
func (s *Store) ObserveBatches(f func(keys int)) { s.carts.Observe(f) }

// CommitWith has the store make the writes that a request makes once through commit. Call it
// before the store is used.
func (s *Store) CommitWith(commit Commit) { s.commit = commit }

// ForgetWith has every erasure also run forget in its transaction, to delete what else holds
// the user's data: the recorded answers of their requests, and of requests on their cart (an
// add keeps the cart's owner as its reference). Call it before the store is used.
func (s *Store) ForgetWith(forget func(tx *gorm.DB, userID string) error) { s.forget = forget }

func toProduct(r productRow) cart.Product {
	return cart.Product{
		ID: r.ID, Name: r.Name, Description: r.Description, Price: cart.Cents(r.PriceCents),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateProduct implements cart.Store.
func (s *Store) CreateProduct(ctx context.Context, p cart.Product) (cart.Product, error) {
	row := productRow{
		ID: p.ID, Name: p.Name, Description: p.Description, PriceCents: int64(p.Price),
		Timestamps: database.Timestamps{CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt},
	}
	id, err := s.commit(ctx, s.db.WithContext(ctx), func(tx *gorm.DB) (string, error) {
		if err := tx.Create(&row).Error; err != nil {
			return "", err
		}
		return row.ID, nil
	})
	switch {
	case err != nil:
		return cart.Product{}, err
	case id != p.ID:
		// An earlier attempt at the request created the product: that one is the answer.
		return s.Product(ctx, id)
	}
	return p, nil
}

// Product implements cart.Store.
func (s *Store) Product(ctx context.Context, id string) (cart.Product, error) {
	return first(s.db.WithContext(ctx), id)
}

func first(tx *gorm.DB, id string) (cart.Product, error) {
	return database.Take(tx.Where("id = ?", id), cart.ErrProductNotFound, toProduct)
}

// ListProducts implements cart.Store. Search is a literal, case-insensitive substring: LIKE's
// wildcards in it are escaped.
func (s *Store) ListProducts(ctx context.Context, q cart.ListQuery) ([]cart.Product, error) {
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case q.Search == "" && q.After == "":
		rows, err = s.listQuery.Rows(ctx, q.Limit)
	case q.Search == "":
		rows, err = s.listAfterQuery.Rows(ctx, q.After, q.Limit)
	case q.After == "":
		pattern := database.ContainsPattern(q.Search)
		rows, err = s.searchQuery.Rows(ctx, pattern, pattern, q.Limit)
	default:
		pattern := database.ContainsPattern(q.Search)
		rows, err = s.searchAfterQuery.Rows(ctx, q.After, pattern, pattern, q.Limit)
	}
	if err != nil {
		return nil, err
	}
	return scanProducts(rows, q.Limit)
}

// UpdateProduct implements cart.Store.
func (s *Store) UpdateProduct(ctx context.Context, id string, name, description *string, price *cart.Cents, cond etag.Condition, now time.Time) (cart.Product, error) {
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
		if err := checkProduct(tx, id, cond); err != nil {
			return err
		}
		if err := database.Changed(tx.Model(&productRow{}).Where("id = ?", id).Updates(changes), cart.ErrProductNotFound); err != nil {
			return err
		}
		var err error
		p, err = first(tx, id)
		return err
	})
	return p, err
}

// DeleteProduct implements cart.Store. The product's cart lines go with it (ON DELETE
// CASCADE).
func (s *Store) DeleteProduct(ctx context.Context, id string, cond etag.Condition) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := checkProduct(tx, id, cond); err != nil {
			return err
		}
		return database.Changed(tx.Where("id = ?", id).Delete(&productRow{}), cart.ErrProductNotFound)
	})
}

// checkProduct returns etag.ErrMismatch if cond is a precondition the product's current ETag
// does not satisfy, or ErrProductNotFound. It locks the product's row until tx ends, so that
// the write after the check sees the row the check saw.
func checkProduct(tx *gorm.DB, id string, cond etag.Condition) error {
	if !cond.Present() {
		return nil
	}
	p, err := first(database.ForUpdate(tx), id)
	if err != nil {
		return err
	}
	return cond.Check(p.ETag())
}

// lockCartSQL reads a user's lines as cartSQL does, with their IDs, for a conditional change
// of the cart; on PostgreSQL with lockCartSuffix, which locks the lines and their products
// until the transaction ends.
const (
	lockCartSQL = `SELECT ci.id, ci.product_id, p.name, p.price_cents, ci.quantity
FROM cart_items ci JOIN products p ON p.id = ci.product_id WHERE ci.user_id = ? ORDER BY ci.id`
	lockCartSuffix = ` FOR UPDATE`
)

// checkCart returns etag.ErrMismatch if cond is a precondition the user's cart does not
// satisfy, and otherwise the IDs of the cart's lines, locked until tx ends (PostgreSQL; SQLite's
// IMMEDIATE transactions already keep other writers out). A line added concurrently is not
// among them: a conditional Clear deletes only the lines it checked, as if the add came after.
func checkCart(tx *gorm.DB, userID string, cond etag.Condition) ([]int64, error) {
	if !cond.Present() {
		return nil, nil
	}
	q := lockCartSQL
	if database.Dialect(tx) == "postgres" {
		q += lockCartSuffix
	}
	rows, err := tx.Raw(q, userID).Rows()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	c := cart.Cart{UserID: userID}
	var ids []int64
	for rows.Next() {
		var (
			id int64
			l  cart.Line
		)
		if err := rows.Scan(&id, &l.ProductID, &l.Name, &l.UnitPrice, &l.Quantity); err != nil {
			return nil, err
		}
		ids = append(ids, id)
		c.Lines = append(c.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ids, cond.Check(c.ETag())
}

// cartBatchSize bounds the carts read by one query.
const cartBatchSize = 32

// Cart implements cart.Store. Every cart answer ends with it, so concurrent reads share one
// query (package batch). A read is only ever answered by a query that started after it was
// asked, so it sees every change committed before the call, the caller's own included.
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
	rows, err := s.cartsQuery.Rows(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	return scanCartLines(rows, len(userIDs))
}

// readCart reads one cart (SQLite: it runs in-process, with no round trip to save, and has no
// array parameters); a cart without lines is not found.
func (s *Store) readCart(ctx context.Context, userID string) ([]cart.Line, bool, error) {
	rows, err := s.cartQuery.Rows(ctx, userID)
	if err != nil {
		return nil, false, err
	}
	carts, err := scanCartLines(rows, 1)
	lines, found := carts[userID]
	return lines, found, err
}

// AddItem implements cart.Store.
func (s *Store) AddItem(ctx context.Context, userID, productID string, quantity, limit int32, now time.Time) error {
	// The cart, read afterwards, is the answer; the reference kept is the cart's owner, by
	// which an erasure finds whatever was kept of the add.
	db := s.db.WithContext(ctx)
	sqlite := database.Dialect(db) != "postgres"
	write := func(tx *gorm.DB) (string, error) {
		var res *gorm.DB
		if sqlite {
			res = tx.Exec(addItemSQLiteSQL, userID, productID, quantity, now, now, userID, limit)
		} else {
			res = tx.Exec(addItemSQL, userID, productID, quantity, now, now, limit)
		}
		switch {
		case errors.Is(res.Error, gorm.ErrForeignKeyViolated):
			return "", cart.ErrProductNotFound
		case res.Error != nil:
			return "", res.Error
		case res.RowsAffected == 0:
			if err := erased(tx, userID); err != nil {
				return "", err
			}
			return "", cart.ErrQuantityLimit
		}
		return userID, nil
	}
	if sqlite {
		// One statement, checking the tombstone itself: no transaction around it, which
		// would hold SQLite's one connection for every round trip.
		_, err := s.commit(ctx, db, write)
		return err
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := lockUser(tx, userID); err != nil {
			return err
		}
		_, err := s.commit(ctx, tx, write)
		return err
	})
}

// SetQuantity implements cart.Store.
func (s *Store) SetQuantity(ctx context.Context, userID, productID string, quantity int32, cond etag.Condition, now time.Time) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockUser(tx, userID); err != nil {
			return err
		}
		if _, err := checkCart(tx, userID, cond); err != nil {
			return err
		}
		return database.Changed(tx.Model(&cartItemRow{}).
			Where("user_id = ? AND product_id = ?", userID, productID).
			Updates(map[string]any{"quantity": quantity, "updated_at": now}), cart.ErrItemNotFound)
	})
}

// RemoveItem implements cart.Store.
func (s *Store) RemoveItem(ctx context.Context, userID, productID string, cond etag.Condition) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockUser(tx, userID); err != nil {
			return err
		}
		if _, err := checkCart(tx, userID, cond); err != nil {
			return err
		}
		return database.Changed(tx.Where("user_id = ? AND product_id = ?", userID, productID).Delete(&cartItemRow{}), cart.ErrItemNotFound)
	})
}

// Clear implements cart.Store.
func (s *Store) Clear(ctx context.Context, userID string, cond etag.Condition) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockUser(tx, userID); err != nil {
			return err
		}
		if !cond.Present() {
			return tx.Where("user_id = ?", userID).Delete(&cartItemRow{}).Error
		}
		ids, err := checkCart(tx, userID, cond)
		if err != nil || len(ids) == 0 {
			return err
		}
		return tx.Where("id IN ?", ids).Delete(&cartItemRow{}).Error
	})
}

// userLock names the lock that one user's cart writes and erasure take turns on.
func userLock(userID string) string { return "cart user " + userID }

// lockUser makes tx hold the user's lock until it ends, and returns cart.ErrUserErased when
// the user was erased: a write that takes it either commits before an erasure, which then
// deletes what it wrote, or waits for the erasure and sees its tombstone. On SQLite the
// IMMEDIATE transactions already take turns.
func lockUser(tx *gorm.DB, userID string) error {
	if err := database.Lock(tx, userLock(userID)); err != nil {
		return err
	}
	return erased(tx, userID)
}

// erased returns cart.ErrUserErased when the user has a tombstone.
func erased(tx *gorm.DB, userID string) error {
	var n int64
	if err := tx.Model(&erasedUserRow{}).Where("user_id = ?", userID).Limit(1).Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return cart.ErrUserErased
	}
	return nil
}

// Erased implements cart.Store.
func (s *Store) Erased(ctx context.Context, userID string) error {
	return erased(s.db.WithContext(ctx), userID)
}

// Erase implements cart.Store.
func (s *Store) Erase(ctx context.Context, e cart.Erasure, now time.Time) (bool, error) {
	duplicate := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := database.Lock(tx, userLock(e.UserID)); err != nil {
			return err
		}
		if e.EventID != "" {
			var n int64
			if err := tx.Model(&handledEventRow{}).Where("id = ?", e.EventID).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				duplicate = true
				return nil
			}
		}
		if err := tx.Where("user_id = ?", e.UserID).Delete(&cartItemRow{}).Error; err != nil {
			return err
		}
		if err := s.forget(tx, e.UserID); err != nil {
			return err
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&erasedUserRow{UserID: e.UserID, ErasedAt: now}).Error; err != nil {
			return err
		}
		if e.EventID == "" {
			return nil
		}
		return tx.Create(&handledEventRow{ID: e.EventID, HandledAt: now}).Error
	})
	return duplicate, err
}

// handledEventsSweepLock names the lock under which one replica at a time deletes old handled
// events.
const handledEventsSweepLock = "cart handled events sweep"

// SweepHandledEvents deletes the ids of the events handled before before, in batches, unless
// another replica is sweeping. A repeat delivery comes soon after the first (an ack lost, a
// relay that died before marking its row sent); one that came after its id was swept would
// erase the user again, which finds nothing left to delete.
func (s *Store) SweepHandledEvents(ctx context.Context, before time.Time) error {
	return database.DeleteInBatches(ctx, s.db, handledEventsSweepLock, 1000, func(tx *gorm.DB, limit int) (int64, error) {
		res := tx.Where("id IN (?)", tx.Model(&handledEventRow{}).Select("id").Where("handled_at < ?", before.UTC()).Order("handled_at").Limit(limit)).
			Delete(&handledEventRow{})
		return res.RowsAffected, res.Error
	})
}

// CartOwners implements cart.Store.
func (s *Store) CartOwners(ctx context.Context, after string, limit int) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&cartItemRow{}).Distinct("user_id").Where("user_id > ?", after).
		Order("user_id").Limit(limit).Pluck("user_id", &ids).Error
	return ids, err
}

// Alone runs fn unless another replica is running it under name (database.Alone).
func (s *Store) Alone(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	_, err := database.Alone(ctx, s.db, name, fn)
	return err
}

var _ cart.Store = (*Store)(nil)
