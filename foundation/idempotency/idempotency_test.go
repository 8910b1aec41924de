package idempotency_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/idempotency"
	"github.com/acme/shop/foundation/permission"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

type callerKey struct{}

// deniedKey marks the context of a call whose caller may not make its request (any longer).
type deniedKey struct{}

// interceptor returns the interceptor on s, whose callers are what callerKey holds.
func interceptor(t *testing.T, s *idempotency.Store) grpc.UnaryServerInterceptor {
	t.Helper()
	i, err := idempotency.Interceptor(idempotency.Options{
		Store: s, Logger: slog.New(slog.DiscardHandler),
		Caller: func(ctx context.Context) (string, bool) {
			c, ok := ctx.Value(callerKey{}).(string)
			return c, ok
		},
		Authorize: func(ctx context.Context, _ any) error {
			if denied, _ := ctx.Value(deniedKey{}).(bool); denied {
				return permission.ErrDenied
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func call(ctx context.Context, caller, key string) context.Context {
	if caller != "" {
		ctx = context.WithValue(ctx, callerKey{}, caller)
	}
	if key != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(idempotency.MetadataKey, key))
	}
	return ctx
}

var addItem = &grpc.UnaryServerInfo{FullMethod: cartv1.CartService_AddItem_FullMethodName}

func TestMethodsAreDeclaredInTheProtos(t *testing.T) {
	got := idempotency.Methods(cartv1.File_cart_v1_product_proto.Services().Get(0), cartv1.File_cart_v1_cart_proto.Services().Get(0))
	want := []string{cartv1.ProductService_CreateProduct_FullMethodName, cartv1.CartService_AddItem_FullMethodName}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("idempotent RPCs (-want +got):\n%s", diff)
	}
}

// TestInterceptor drives the interceptor with handlers that count their runs.
func TestInterceptor(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, _ *clock, _ *gorm.DB) {
		intercept := interceptor(t, s)
		req := &cartv1.AddItemRequest{UserId: "me", ProductId: "p", Quantity: 1}
		runs := 0
		answer := func(resp proto.Message, err error) grpc.UnaryHandler {
			return func(context.Context, any) (any, error) {
				runs++
				return resp, err
			}
		}
		ok := answer(&cartv1.AddItemResponse{Cart: &cartv1.Cart{UserId: "u", TotalQuantity: 1}}, nil)

		t.Run("a server error is the answer too", func(t *testing.T) {
			// Any of them may come after the handler wrote: its retry must not run again.
			for _, code := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Internal, codes.Unknown, codes.ResourceExhausted} {
				runs = 0
				key := "server-error-" + code.String()
				if _, err := intercept(call(t.Context(), "alice", key), req, addItem, answer(nil, status.Error(code, "try again"))); status.Code(err) != code {
					t.Fatalf("%v: first = %v", code, err)
				}
				_, err := intercept(call(t.Context(), "alice", key), req, addItem, ok)
				if status.Code(err) != code || runs != 1 {
					t.Errorf("%v: retry = %v after %d runs; want the first answer after 1", code, err, runs)
				}
			}
		})

		t.Run("a final failure is the answer", func(t *testing.T) {
			runs = 0
			_, first := intercept(call(t.Context(), "alice", "final"), req, addItem, answer(nil, status.Error(codes.NotFound, "no such product")))
			_, retry := intercept(call(t.Context(), "alice", "final"), req, addItem, ok)
			if runs != 1 || status.Code(retry) != codes.NotFound || status.Convert(retry).Message() != status.Convert(first).Message() {
				t.Errorf("retry = %v after %d runs, want the first %v after 1", retry, runs, first)
			}
		})

		t.Run("a panic is answered INTERNAL, and so is its retry", func(t *testing.T) {
			runs = 0
			func() {
				defer func() { _ = recover() }()
				_, _ = intercept(call(t.Context(), "alice", "panic"), req, addItem, func(context.Context, any) (any, error) { panic("boom") })
			}()
			if _, err := intercept(call(t.Context(), "alice", "panic"), req, addItem, ok); status.Code(err) != codes.Internal || runs != 0 {
				t.Errorf("retry after a panic = %v after %d runs, want INTERNAL after 0", err, runs)
			}
		})

		t.Run("the handler outlives a caller that hangs up", func(t *testing.T) {
			runs = 0
			ctx, hangUp := context.WithCancel(t.Context())
			defer hangUp()
			var deadline time.Time
			written := func(ctx context.Context, _ any) (any, error) {
				runs++
				// The write is done; the caller hangs up before the handler reads its result.
				hangUp()
				if c, _ := ctx.Value(callerKey{}).(string); c != "alice" {
					t.Errorf("the handler's context lost the call's values: caller %q", c)
				}
				if err := ctx.Err(); err != nil {
					return nil, status.FromContextError(err).Err()
				}
				deadline, _ = ctx.Deadline()
				return &cartv1.AddItemResponse{Cart: &cartv1.Cart{UserId: "u", TotalQuantity: 1}}, nil
			}
			first, err := intercept(call(ctx, "alice", "hang-up"), req, addItem, written)
			if err != nil {
				t.Fatalf("first = %v, want the handler's answer", err)
			}
			if deadline.IsZero() || time.Until(deadline) > idempotency.DefaultLockTimeout/2 {
				t.Errorf("the handler's deadline is %v, want within half the lock timeout", deadline)
			}
			retry, err := intercept(call(t.Context(), "alice", "hang-up"), req, addItem, written)
			if err != nil || runs != 1 {
				t.Fatalf("retry = %v after %d runs, want the replay after 1", err, runs)
			}
			if diff := cmp.Diff(first, retry, protocmp.Transform()); diff != "" {
				t.Errorf("replay (-first +replay):\n%s", diff)
			}
		})

		t.Run("a success is replayed", func(t *testing.T) {
			runs = 0
			first, err := intercept(call(t.Context(), "alice", "success"), req, addItem, ok)
			if err != nil {
				t.Fatal(err)
			}
			retry, err := intercept(call(t.Context(), "alice", "success"), req, addItem, ok)
			if err != nil || runs != 1 {
				t.Fatalf("retry = %v after %d runs", err, runs)
			}
			if diff := cmp.Diff(first, retry, protocmp.Transform()); diff != "" {
				t.Errorf("replay (-first +replay):\n%s", diff)
			}
		})

		t.Run("a replay is authorized again", func(t *testing.T) {
			// An admin added to another user's cart, and has been demoted since.
			runs = 0
			if _, err := intercept(call(t.Context(), "alice", "authorized"), req, addItem, ok); err != nil || runs != 1 {
				t.Fatalf("first = %v after %d runs", err, runs)
			}
			denied := context.WithValue(call(t.Context(), "alice", "authorized"), deniedKey{}, true)
			if resp, err := intercept(denied, req, addItem, ok); !errors.Is(err, permission.ErrDenied) || resp != nil || runs != 1 {
				t.Errorf("replay to a caller who may no longer make the request = %v, %v after %d runs; want permission denied after 1", resp, err, runs)
			}
			if _, err := intercept(call(t.Context(), "alice", "authorized"), req, addItem, ok); err != nil || runs != 1 {
				t.Errorf("replay to a caller who may = %v after %d runs, want the answer after 1", err, runs)
			}
		})

		t.Run("a refused request leaves no answer", func(t *testing.T) {
			runs = 0
			denied := context.WithValue(call(t.Context(), "alice", "refused"), deniedKey{}, true)
			if _, err := intercept(denied, req, addItem, ok); !errors.Is(err, permission.ErrDenied) || runs != 0 {
				t.Fatalf("refused = %v after %d runs, want permission denied after 0", err, runs)
			}
			if _, err := intercept(call(t.Context(), "alice", "refused"), req, addItem, ok); err != nil || runs != 1 {
				t.Errorf("once allowed = %v after %d runs, want it to run", err, runs)
			}
		})

		t.Run("without a key, or on another RPC, every call runs", func(t *testing.T) {
			runs = 0
			for range 2 {
				if _, err := intercept(call(t.Context(), "alice", ""), req, addItem, ok); err != nil {
					t.Fatal(err)
				}
				other := &grpc.UnaryServerInfo{FullMethod: cartv1.CartService_UpdateItem_FullMethodName}
				if _, err := intercept(call(t.Context(), "alice", "k"), req, other, ok); err != nil {
					t.Fatal(err)
				}
			}
			if runs != 4 {
				t.Errorf("%d runs, want 4", runs)
			}
		})

		t.Run("refused keys", func(t *testing.T) {
			runs = 0
			for name, ctx := range map[string]context.Context{
				"no caller":     call(t.Context(), "", "k"),
				"two keys":      metadata.NewIncomingContext(call(t.Context(), "alice", ""), metadata.Pairs(idempotency.MetadataKey, "a", idempotency.MetadataKey, "b")),
				"empty":         metadata.NewIncomingContext(call(t.Context(), "alice", ""), metadata.Pairs(idempotency.MetadataKey, "")),
				"too long":      call(t.Context(), "alice", strings.Repeat("k", idempotency.MaxKeyLength+1)),
				"control":       call(t.Context(), "alice", "a\x7fb"),
				"a space":       call(t.Context(), "alice", "a b"),
				"high bit byte": call(t.Context(), "alice", "a\xffb"),
			} {
				if _, err := intercept(ctx, req, addItem, ok); status.Code(err) != codes.InvalidArgument {
					t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
				}
			}
			if runs != 0 {
				t.Errorf("%d runs, want 0", runs)
			}
		})
	})
}

func TestFingerprint(t *testing.T) {
	a, err := idempotency.Fingerprint(cartv1.CartService_AddItem_FullMethodName, &cartv1.AddItemRequest{ProductId: "p", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, other := range map[string]func() (string, error){
		"another request": func() (string, error) {
			return idempotency.Fingerprint(cartv1.CartService_AddItem_FullMethodName, &cartv1.AddItemRequest{ProductId: "p", Quantity: 2})
		},
		"another method": func() (string, error) {
			return idempotency.Fingerprint(cartv1.CartService_UpdateItem_FullMethodName, &cartv1.AddItemRequest{ProductId: "p", Quantity: 1})
		},
	} {
		b, err := other()
		if err != nil || b == a {
			t.Errorf("%s: fingerprint %s, %v; want another than %s", name, b, err, a)
		}
	}
}

// hangUpKey marks the context of a claim whose caller hangs up mid-claim; it holds the
// context's cancel.
type hangUpKey struct{}

// TestCancelDuringClaim hangs up in the middle of Claim's transaction, after its insert and
// before its commit, as a client that times out at that moment does: the answer is CANCELED,
// the handler never runs, and the retry runs.
func TestCancelDuringClaim(t *testing.T) {
	eachStore(t, func(t *testing.T, s *idempotency.Store, _ *clock, db *gorm.DB) {
		// Claim inserts a new key with one statement in a transaction of its own.
		err := db.Callback().Raw().After("gorm:raw").Register("test:hang_up", func(tx *gorm.DB) {
			hangUp, ok := tx.Statement.Context.Value(hangUpKey{}).(context.CancelFunc)
			if !ok || !strings.HasPrefix(tx.Statement.SQL.String(), "INSERT INTO "+idempotency.Table) {
				return
			}
			hangUp()
			// database/sql rolls a transaction back once its context ends; wait for that, so
			// that the commit meets a finished transaction, as the audit saw.
			if sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx); ok {
				for {
					if _, err := sqlTx.ExecContext(context.Background(), "SELECT 1"); errors.Is(err, sql.ErrTxDone) {
						break
					}
					runtime.Gosched()
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		intercept := interceptor(t, s)
		req := &cartv1.AddItemRequest{UserId: "me", ProductId: "p", Quantity: 1}
		runs := 0
		handler := func(context.Context, any) (any, error) {
			runs++
			return &cartv1.AddItemResponse{Cart: &cartv1.Cart{UserId: "u", TotalQuantity: 1}}, nil
		}
		ctx, hangUp := context.WithCancel(t.Context())
		defer hangUp()
		ctx = context.WithValue(ctx, hangUpKey{}, hangUp)
		if _, err := intercept(call(ctx, "alice", "cut"), req, addItem, handler); status.Code(err) != codes.Canceled || runs != 0 {
			t.Errorf("cancelled during Claim: %v after %d runs, want CANCELED after 0", err, runs)
		}
		if _, err := intercept(call(t.Context(), "alice", "cut"), req, addItem, handler); err != nil || runs != 1 {
			t.Errorf("retry = %v after %d runs, want it to run", err, runs)
		}
	})
}
