package idempotency

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// ErrKeyLost is what Apply returns, having written nothing, for a request that no longer holds
// its key: it ran past the LockTimeout and another request took the key over.
var ErrKeyLost = errors.New("idempotency: the request no longer holds its key")

// held is the key a running request holds, in its handler's context.
type held struct {
	caller, key, token string
}

type heldKey struct{}

// Apply runs write, the one business write of a request, on db (the database of the Store,
// with the request's context), and returns the reference write returns: what a retry needs to
// rebuild the answer, such as the ID of what write created ("" when what is stored anyway is
// enough). Without a key in ctx, write runs as it is. With one, write, the mark that the key's
// request has written, and the reference commit in one transaction, or none does, so that no
// crash can separate them: if a request that held the key before (and died before its answer
// was recorded) committed its write, Apply writes nothing and returns that write's reference,
// from which the handler rebuilds its answer; if the request lost its key to another, Apply
// writes nothing and returns ErrKeyLost.
func Apply(ctx context.Context, db *gorm.DB, write func(tx *gorm.DB) (ref string, err error)) (string, error) {
	h, ok := ctx.Value(heldKey{}).(held)
	if !ok {
		return write(db)
	}
	var ref string
	err := db.Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&row{}).
			Where("caller = ? AND idempotency_key = ? AND token = ? AND done = ? AND written = ?", h.caller, h.key, h.token, false, false).
			Update("written", true)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			var err error
			if ref, err = write(tx); err != nil || ref == "" {
				return err
			}
			// The mark's update keeps the row from other writers until this transaction ends:
			// the key is still this request's.
			return tx.Model(&row{}).Where("caller = ? AND idempotency_key = ?", h.caller, h.key).Update("reference", ref).Error
		}
		var r row
		if err := tx.Where("caller = ? AND idempotency_key = ?", h.caller, h.key).Take(&r).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if r.Token == h.token && r.Written {
			ref = r.Reference
			return nil
		}
		return ErrKeyLost
	})
	if err != nil {
		return "", err
	}
	return ref, nil
}

// Forget deletes, in tx, every key of caller and every key whose write kept ref as its
// reference (Apply), whoever held it, with the answers recorded under them: when a user is
// erased, nothing they sent or that holds their data (their cart, as an admin's request wrote
// it) can be replayed. A request of caller that holds a key now loses it (ErrKeyLost).
func Forget(tx *gorm.DB, caller, ref string) error {
	return tx.Where("caller = ? OR (reference = ? AND reference <> '')", caller, ref).Delete(&row{}).Error
}
