package idempotency_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/idempotency"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

// write is a business row the handlers under test insert through Apply.
type write struct {
	ID  uint `gorm:"primaryKey"`
	Key string
}

var createProduct = &grpc.UnaryServerInfo{FullMethod: cartv1.ProductService_CreateProduct_FullMethodName}

// failAnswerKey marks the calls whose answer the store cannot record, as when the process
// dies, or the database goes away, right after the business write.
type failAnswerKey struct{}

// TestApply writes through Apply from handlers under the interceptor: the write, the key's
// mark and the write's reference commit together, a retry after a lost answer does not write
// again and gets the reference back, and a request that lost its key writes nothing.
func TestApply(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, c *clock, db *gorm.DB) {
		if err := db.AutoMigrate(&write{}); err != nil {
			t.Fatal(err)
		}
		err := db.Callback().Update().Before("gorm:update").Register("test:lose_the_answer", func(tx *gorm.DB) {
			if tx.Statement.Context.Value(failAnswerKey{}) == nil || tx.Statement.Table != idempotency.Table {
				return
			}
			if m, ok := tx.Statement.Dest.(map[string]any); ok {
				if _, ok := m["done"]; ok {
					_ = tx.AddError(errors.New("the answer is lost"))
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		intercept := interceptor(t, s)
		req := &cartv1.AddItemRequest{UserId: "me", ProductId: "p", Quantity: 1}
		runs := 0
		writes := func(key string) int64 {
			var n int64
			if err := db.Model(&write{}).Where("key = ?", key).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		handler := func(before func()) func(ctx context.Context, _ any) (any, error) {
			return func(ctx context.Context, _ any) (any, error) {
				runs++
				before()
				key, _ := idempotencyKey(ctx)
				if _, err := idempotency.Apply(ctx, db.WithContext(ctx), func(tx *gorm.DB) (string, error) {
					return "", tx.Create(&write{Key: key}).Error
				}); err != nil {
					return nil, status.Error(codes.Internal, err.Error())
				}
				return &cartv1.AddItemResponse{Cart: &cartv1.Cart{UserId: "u", TotalQuantity: int32(writes(key))}}, nil
			}
		}
		nothing := func() {}

		t.Run("without a key, the write is as it is", func(t *testing.T) {
			ref, err := idempotency.Apply(t.Context(), db.WithContext(t.Context()), func(tx *gorm.DB) (string, error) {
				return "its-ref", tx.Create(&write{Key: "none"}).Error
			})
			if err != nil || ref != "its-ref" || writes("none") != 1 {
				t.Errorf("Apply = %q, %v, %d writes; want its-ref, nil, 1", ref, err, writes("none"))
			}
		})

		t.Run("an answer lost after the write is rebuilt without writing again", func(t *testing.T) {
			runs = 0
			lost := context.WithValue(t.Context(), failAnswerKey{}, true)
			if _, err := intercept(call(lost, "alice", "lost"), req, addItem, handler(nothing)); err != nil {
				t.Fatal(err)
			}
			if _, err := intercept(call(t.Context(), "alice", "lost"), req, addItem, handler(nothing)); status.Code(err) != codes.Aborted {
				t.Errorf("retry within the lock = %v, want ABORTED (409)", err)
			}
			c.advance(idempotency.DefaultLockTimeout + time.Second)
			resp, err := intercept(call(t.Context(), "alice", "lost"), req, addItem, handler(nothing))
			if err != nil || runs != 2 {
				t.Fatalf("retry after the lock = %v, %v after %d runs; want the rebuilt answer after 2", resp, err, runs)
			}
			if n := writes("lost"); n != 1 || resp.(*cartv1.AddItemResponse).GetCart().GetTotalQuantity() != 1 {
				t.Errorf("%d writes, answer %v; want 1 write and an answer that shows it", n, resp)
			}
			if _, err := intercept(call(t.Context(), "alice", "lost"), req, addItem, handler(nothing)); err != nil || runs != 2 {
				t.Errorf("then a retry = %v after %d runs, want the recorded answer after 2", err, runs)
			}
		})

		t.Run("the write's reference is handed back on the rebuild", func(t *testing.T) {
			// As creating a product: the answer is the row the write created, found again by
			// the ID the write kept with its mark.
			runs = 0
			create := func(ctx context.Context, _ any) (any, error) {
				runs++
				w := write{Key: "created"}
				id, err := idempotency.Apply(ctx, db.WithContext(ctx), func(tx *gorm.DB) (string, error) {
					if err := tx.Create(&w).Error; err != nil {
						return "", err
					}
					return strconv.FormatUint(uint64(w.ID), 10), nil
				})
				if err != nil {
					return nil, status.Error(codes.Internal, err.Error())
				}
				return &cartv1.CreateProductResponse{Product: &cartv1.Product{Id: id}}, nil
			}
			req := &cartv1.CreateProductRequest{Name: "Gift Card", Price: "25"}
			lost := context.WithValue(t.Context(), failAnswerKey{}, true)
			first, err := intercept(call(lost, "alice", "created"), req, createProduct, create)
			if err != nil {
				t.Fatal(err)
			}
			c.advance(idempotency.DefaultLockTimeout + time.Second)
			retry, err := intercept(call(t.Context(), "alice", "created"), req, createProduct, create)
			if err != nil || runs != 2 {
				t.Fatalf("retry after the lock = %v, %v after %d runs; want the rebuilt answer after 2", retry, err, runs)
			}
			if diff := cmp.Diff(first, retry, protocmp.Transform()); diff != "" {
				t.Errorf("rebuilt answer (-first +retry):\n%s", diff)
			}
			if n := writes("created"); n != 1 {
				t.Errorf("%d rows created, want 1", n)
			}
		})

		t.Run("a failed write leaves the key unwritten", func(t *testing.T) {
			runs = 0
			failing := func(ctx context.Context, _ any) (any, error) {
				runs++
				_, err := idempotency.Apply(ctx, db.WithContext(ctx), func(tx *gorm.DB) (string, error) {
					if err := tx.Create(&write{Key: "failed"}).Error; err != nil {
						return "", err
					}
					return "", errors.New("the write fails after its first statement")
				})
				return nil, status.Error(codes.Internal, err.Error())
			}
			lost := context.WithValue(t.Context(), failAnswerKey{}, true)
			_, _ = intercept(call(lost, "alice", "failed"), req, addItem, failing)
			c.advance(idempotency.DefaultLockTimeout + time.Second)
			if _, err := intercept(call(t.Context(), "alice", "failed"), req, addItem, handler(nothing)); err != nil || runs != 2 {
				t.Fatalf("retry = %v after %d runs", err, runs)
			}
			if n := writes("failed"); n != 1 {
				t.Errorf("%d writes, want 1: the retry's, the failed one rolled back", n)
			}
		})

		t.Run("a request that lost its key writes nothing", func(t *testing.T) {
			runs = 0
			takenOver := func() {
				// This request stalls past the lock, and another takes its key over.
				c.advance(idempotency.DefaultLockTimeout + time.Second)
				fp, err := idempotency.Fingerprint(addItem.FullMethod, req)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := s.Claim(t.Context(), "alice", "stalled", fp); err != nil || got.Outcome != idempotency.Claimed {
					t.Fatalf("takeover = %v, %v", got.Outcome, err)
				}
			}
			if _, err := intercept(call(t.Context(), "alice", "stalled"), req, addItem, handler(takenOver)); status.Code(err) != codes.Internal {
				t.Errorf("stalled request = %v, want its INTERNAL", err)
			}
			if n := writes("stalled"); n != 0 {
				t.Errorf("%d writes, want 0", n)
			}
		})
	})
}

// idempotencyKey is the key of the call in ctx.
func idempotencyKey(ctx context.Context) (string, bool) {
	v := metadata.ValueFromIncomingContext(ctx, idempotency.MetadataKey)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}
