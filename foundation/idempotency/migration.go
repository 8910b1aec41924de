package idempotency

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// CreateTable is the migration, under id, that creates a Store's table: one row per (caller,
// key), the primary key, so that one insert claims a key atomically on every replica and keys of
// different callers never meet. A row holds the request's fingerprint, the token of the request
// that holds it, and, once done, its answer: the response message or the google.rpc.Status of
// its error. The index on created_at serves the sweep of expired keys. It describes the table
// as this version of the Store uses it: a later change to the table needs a migration of its
// own, so that databases migrated with this one stay as they were.
func CreateTable(id string) *gormigrate.Migration {
	type idempotencyKey struct {
		Caller         string `gorm:"type:varchar(255);primaryKey"`
		IdempotencyKey string `gorm:"type:varchar(255);primaryKey"`
		Fingerprint    string `gorm:"type:varchar(64);not null"`
		Token          string `gorm:"type:varchar(32);not null"`
		Done           bool   `gorm:"not null"`
		Response       []byte
		Status         []byte
		CreatedAt      time.Time `gorm:"not null;index:idempotency_keys_created_at_idx"`
		LockedAt       time.Time `gorm:"not null"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().CreateTable(&idempotencyKey{})
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Migrator().DropTable(Table)
		},
	}
}

// AddWritten is the migration, under id, that adds to a Store's table the column written:
// whether the request that holds a key committed its business write (Apply), in the write's
// own transaction.
func AddWritten(id string) *gormigrate.Migration {
	type idempotencyKey struct {
		Written bool `gorm:"not null;default:false"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().AddColumn(&idempotencyKey{}, "Written")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().DropColumn(&idempotencyKey{}, "Written")
		},
	}
}

// AddReference is the migration, under id, that adds to a Store's table the column reference:
// what the write of the request that holds a key chose to keep with its mark (Apply), such as
// the ID of what it created, so that a retry can rebuild the answer from it. Keys marked
// before it have none (the empty string).
func AddReference(id string) *gormigrate.Migration {
	type idempotencyKey struct {
		Reference string `gorm:"not null;default:''"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().AddColumn(&idempotencyKey{}, "Reference")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().DropColumn(&idempotencyKey{}, "Reference")
		},
	}
}

// AddCallerIndex is the migration, under id, that indexes a Store's table by (caller,
// created_at): Claim counts a caller's live keys against the cap, and finds the oldest, on every
// request with a new key.
func AddCallerIndex(id string) *gormigrate.Migration {
	type idempotencyKey struct {
		Caller    string    `gorm:"index:idempotency_keys_caller_created_at_idx,priority:1"`
		CreatedAt time.Time `gorm:"index:idempotency_keys_caller_created_at_idx,priority:2"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().CreateIndex(&idempotencyKey{}, "idempotency_keys_caller_created_at_idx")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().DropIndex(&idempotencyKey{}, "idempotency_keys_caller_created_at_idx")
		},
	}
}

// AddReferenceIndex is the migration, under id, that indexes a Store's table by reference,
// where one is kept: Forget finds the answers that hold what a reference names (a user's cart)
// whoever the caller was.
func AddReferenceIndex(id string) *gormigrate.Migration {
	type idempotencyKey struct {
		Reference string `gorm:"index:idempotency_keys_reference_idx,where:reference <> ''"`
	}
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().CreateIndex(&idempotencyKey{}, "idempotency_keys_reference_idx")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table(Table).Migrator().DropIndex(&idempotencyKey{}, "idempotency_keys_reference_idx")
		},
	}
}
