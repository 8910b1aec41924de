package database

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ForUpdate makes the rows tx reads locked until its transaction ends (SELECT ... FOR UPDATE),
// so that a check on them and the write that depends on it are one step: a concurrent writer
// waits, then sees the new rows. PostgreSQL only: SQLite has no row locks, and needs none, as
// Open begins every transaction IMMEDIATE, which already serialises writers.
func ForUpdate(tx *gorm.DB) *gorm.DB {
	if Dialect(tx) == "postgres" {
		return tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return tx
}

// Exclusively runs fn in a transaction unless another transaction is running one for the same
// name, and reports whether it ran: a periodic job every replica runs (a sweep) is done by one
// of them at a time, and the others skip their turn instead of queueing behind it. On
// PostgreSQL the transaction first tries a transaction-level advisory lock named name, which
// lives and dies with the transaction, so it holds no session state and is safe behind a
// transaction pooler such as PgBouncer. On SQLite it always runs: Open begins every
// transaction IMMEDIATE, so writers already take turns, and one file has one process writing.
func Exclusively(ctx context.Context, db *gorm.DB, name string, fn func(tx *gorm.DB) error) (ran bool, err error) {
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if Dialect(tx) == "postgres" {
			var locked bool
			if err := tx.Raw("SELECT pg_try_advisory_xact_lock(?)", lockKey(name)).Scan(&locked).Error; err != nil {
				return fmt.Errorf("take lock %s: %w", name, err)
			}
			if !locked {
				return nil
			}
		}
		ran = true
		return fn(tx)
	})
	return ran && err == nil, err
}

// Lock makes the transaction tx wait for, and then hold until it ends, the lock named name, so
// that transactions about the same thing (one caller's keys, say) take turns: a count and the
// insert that depends on it are then one step. On PostgreSQL it is a transaction-level
// advisory lock, safe behind PgBouncer like Exclusively's; on SQLite it does nothing, as
// every transaction already begins IMMEDIATE and writers take turns.
func Lock(tx *gorm.DB, name string) error {
	if Dialect(tx) != "postgres" {
		return nil
	}
	if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lockKey(name)).Error; err != nil {
		return fmt.Errorf("take lock %s: %w", name, err)
	}
	return nil
}

// DeleteInBatches deletes rows batch by batch, each batch in a transaction of its own run
// Exclusively under name, until a batch deletes fewer than size rows, ctx ends, or another
// transaction holds name (another replica is sweeping: this one leaves the rest to it).
// deleteBatch deletes at most limit rows in tx and says how many. Short batches keep each transaction's locks and the table's bloat small, so a sweep
// of millions of rows never stalls the requests that write to the same table.
func DeleteInBatches(ctx context.Context, db *gorm.DB, name string, size int, deleteBatch func(tx *gorm.DB, limit int) (int64, error)) error {
	for ctx.Err() == nil {
		var n int64
		ran, err := Exclusively(ctx, db, name, func(tx *gorm.DB) error {
			var err error
			n, err = deleteBatch(tx, size)
			return err
		})
		if err != nil {
			return err
		}
		if !ran || n < int64(size) {
			return nil
		}
	}
	return ctx.Err()
}

// Alone runs fn unless another replica is running it under the same name, and reports whether
// it ran: a periodic job whose own transactions are many and short (a reconciliation that
// calls another service between them) is done by one replica at a time. On PostgreSQL a
// transaction of its own holds the advisory lock named name while fn runs; on SQLite, one
// process per file, fn just runs (a transaction held open would keep fn's own writes out).
func Alone(ctx context.Context, db *gorm.DB, name string, fn func(ctx context.Context) error) (ran bool, err error) {
	if Dialect(db) != "postgres" {
		return true, fn(ctx)
	}
	return Exclusively(ctx, db, name, func(*gorm.DB) error { return fn(ctx) })
}
