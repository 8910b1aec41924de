package database

import (
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
