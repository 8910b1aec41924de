// Package idempotency makes retries of the RPCs that declare `(shop.v1.idempotent) = true` in
// their .proto safe: a request that carries an idempotency key (gRPC metadata
// `idempotency-key`, the REST header `Idempotency-Key`) runs once per caller and key; a repeat
// of the same request by the same caller within the keys' lifetime (24 hours) answers the first
// answer again, with the response header `idempotent-replayed: true`, and changes nothing. The
// same key with a different request is INVALID_ARGUMENT with the reason
// IDEMPOTENCY_KEY_REUSED (HTTP 422); a repeat while the first request runs is ABORTED with
// IDEMPOTENCY_KEY_IN_USE (HTTP 409); a malformed key is INVALID_ARGUMENT (400).
//
// Once a request holds its key, its handler runs to the end whether or not the caller waits:
// it gets a context that keeps the call's values (caller, request id, trace) but not its
// cancellation or deadline, bounded instead by half the Store's LockTimeout, so that a holder
// is done before another request may take its key over. Which answers are kept follows from
// one fact: no error of a handler proves that it wrote nothing. The read after a commit can
// fail, and a commit that fails on a broken connection may have happened. So every answer the
// handler gives is recorded and replayed, server errors (INTERNAL, UNAVAILABLE, the run's own
// DEADLINE_EXCEEDED) and a panic (INTERNAL) included, as Stripe does; a client that wants
// another attempt sends a new key. Only what is known to precede the handler leaves no
// answer: a refused key, and a Claim that failed (the caller hung up: CANCELED), whose
// half-made claim is withdrawn, so that a retry runs. An answer that cannot be recorded (the
// database is gone, the process died) leaves the key held, not released: a retry is 409 until
// the LockTimeout has passed, and then runs the handler again. A handler that makes its write
// through Apply is safe then too: its write commits with the key's mark that it was made, and
// a reference of its choosing (the ID of what it created), so the retry does not make it again
// and rebuilds the answer from what is stored and that reference; and a request that lost its
// key to such a retry cannot write any more. A handler that writes otherwise would write twice
// in that window.
//
// A caller has at most the Store's MaxKeys live keys: a request with a new key beyond them is
// RESOURCE_EXHAUSTED (HTTP 429) with a retry-after header that says when the caller's oldest
// key expires, and runs nothing. No key is evicted to make room, so that every recorded answer
// can be replayed for the whole 24 hours, and no caller can grow the table without bound.
//
// Every request with a key is authorized (Options.Authorize) before its key is looked at: a
// replay answers only a caller who may make the request now (an admin demoted since the first
// request gets PERMISSION_DENIED, not the answer), and a refused request leaves no answer.
//
// The keys live in the service's own database (Store), so that every replica sees them. The
// declarations are read from the registered descriptors once, when the interceptor is built,
// like package access does; requests without a key run as they would without this package.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/shop/foundation/grpcserver"
	"github.com/acme/shop/foundation/rpcs"
	shopv1 "github.com/acme/shop/protos/gen/go/shop/v1"
)

// MetadataKey is the gRPC metadata that carries the key; the REST gateway passes the header
// Idempotency-Key as it.
const MetadataKey = "idempotency-key"

// ReplayedKey is the response header metadata set on an answer that is a replay; the REST
// gateway sends it as the header Idempotent-Replayed.
const ReplayedKey = "idempotent-replayed"

// MaxKeyLength is the longest key accepted; a key is 1 to MaxKeyLength visible ASCII
// characters (0x21 to 0x7E).
const MaxKeyLength = 255

// completeTimeout bounds the writes that record an answer, or withdraw a claim that failed;
// they run even when the caller has gone, so that a retry finds the answer.
const completeTimeout = 5 * time.Second

// Options configure Interceptor.
type Options struct {
	// Store keeps the keys.
	Store *Store
	// Caller returns the id of the authenticated caller of ctx: keys are kept per caller. A
	// request with a key but no caller is refused (INVALID_ARGUMENT).
	Caller func(ctx context.Context) (string, bool)
	// Logger receives the failures to record an answer.
	Logger *slog.Logger
	// Authorize returns nil when the caller of ctx may make req now, and else the error its
	// handler would return (permission.ErrDenied, say). It checks who may do what, not what
	// the request would find: it runs before every request with a key, so that a replay is
	// never answered to a caller who has lost the right to make the request.
	Authorize func(ctx context.Context, req any) error
}

// Interceptor returns the unary server interceptor that makes the RPCs declaring
// `(shop.v1.idempotent) = true` idempotent under a key. It must run after authentication (it
// needs the caller) and sees the handler's errors already translated into statuses
// (grpcserver.Options.Idempotency puts it there). The declarations are read from
// protoregistry.GlobalFiles now, so the services' generated packages must be linked in.
func Interceptor(opts Options) (grpc.UnaryServerInterceptor, error) {
	if opts.Store == nil || opts.Caller == nil || opts.Logger == nil || opts.Authorize == nil {
		return nil, fmt.Errorf("idempotency: Store, Caller, Logger and Authorize are required")
	}
	outputs, err := declared(protoregistry.GlobalFiles, protoregistry.GlobalTypes)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		output, ok := outputs[info.FullMethod]
		if !ok {
			return handler(ctx, req)
		}
		keys := metadata.ValueFromIncomingContext(ctx, MetadataKey)
		if len(keys) == 0 {
			return handler(ctx, req)
		}
		if len(keys) > 1 {
			return nil, badKey("send one Idempotency-Key")
		}
		key := keys[0]
		if err := CheckKey(key); err != nil {
			return nil, err
		}
		caller, ok := opts.Caller(ctx)
		if !ok || caller == "" {
			return nil, badKey("an Idempotency-Key needs an authenticated caller")
		}
		if err := opts.Authorize(ctx, req); err != nil {
			return nil, err
		}
		msg, ok := req.(proto.Message)
		if !ok {
			return nil, status.Error(codes.Internal, "internal error")
		}
		fingerprint, err := Fingerprint(info.FullMethod, msg)
		if err != nil {
			return nil, err
		}
		claim, err := opts.Store.Claim(ctx, caller, key, fingerprint)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				// The caller hung up or ran out of time while claiming: its code, not an
				// internal error (the driver reports a cut transaction in its own words).
				return nil, status.FromContextError(cerr).Err()
			}
			return nil, err
		}
		switch claim.Outcome {
		case Mismatch:
			return nil, grpcserver.WithReason(codes.InvalidArgument, grpcserver.ReasonIdempotencyKeyReused,
				"this Idempotency-Key was used for a different request")
		case Running:
			return nil, grpcserver.WithReason(codes.Aborted, grpcserver.ReasonIdempotencyKeyInUse,
				"the first request with this Idempotency-Key is still running; retry later")
		case Done:
			return replay(ctx, claim, output)
		case Full:
			return nil, grpcserver.RetryAfter(ctx, claim.RetryAfter,
				"too many Idempotency-Keys in use; a new one is accepted once your oldest expires")
		}
		return run(ctx, opts, req, handler, caller, key, claim.Token, info.FullMethod)
	}, nil
}

// run runs the request that holds the key, detached from the caller's cancellation, and
// records its answer, whatever it is (see the package comment).
func run(ctx context.Context, opts Options, req any, handler grpc.UnaryHandler, caller, key, token, method string) (resp any, err error) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.Store.runTimeout())
	defer cancel()
	hctx = context.WithValue(hctx, heldKey{}, held{caller: caller, key: key, token: token})
	// Its write commits with the key's mark (Apply), so the handler may run again when the
	// database fails under it (grpcserver repeats such calls once).
	hctx = grpcserver.WithRepeatable(hctx)
	returned := false
	defer func() {
		if !returned {
			// A panic, which recovery answers with INTERNAL: that is the answer, since the
			// handler may have written before it panicked.
			complete(ctx, opts, caller, key, token, method, nil, errPanicked)
		}
	}()
	resp, err = handler(hctx, req)
	returned = true
	complete(ctx, opts, caller, key, token, method, resp, err)
	return resp, err
}

// errPanicked is the answer recorded for a handler that panicked, the one recovery gives.
var errPanicked = status.Error(codes.Internal, "internal error")

// complete records resp or err as the answer of the key. If that fails, the key stays held
// (a retry is 409) until the LockTimeout lets a retry take it over.
func complete(ctx context.Context, opts Options, caller, key, token, method string, resp any, err error) {
	var response, st []byte
	if err != nil {
		st, _ = proto.Marshal(status.Convert(err).Proto())
	} else if m, ok := resp.(proto.Message); ok {
		response, _ = proto.Marshal(m)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
	defer cancel()
	holds, cerr := opts.Store.Complete(rctx, caller, key, token, response, st)
	switch {
	case cerr != nil:
		opts.Logger.ErrorContext(ctx, "recording the answer of an idempotency key; it stays held until its lock times out", "grpc.method", method, "err", cerr)
	case !holds:
		opts.Logger.WarnContext(ctx, "an idempotent request outlived its lock and lost its key", "grpc.method", method)
	}
}

// replay answers the stored answer again.
func replay(ctx context.Context, claim Claim, output protoreflect.MessageType) (any, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(ReplayedKey, "true"))
	if claim.Status != nil {
		var st spb.Status
		if err := proto.Unmarshal(claim.Status, &st); err != nil {
			return nil, err
		}
		return nil, status.FromProto(&st).Err()
	}
	resp := output.New().Interface()
	if err := proto.Unmarshal(claim.Response, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// CheckKey returns nil for a well-formed key, 1 to MaxKeyLength visible ASCII characters, and
// else INVALID_ARGUMENT with a google.rpc.BadRequest violation of the field Idempotency-Key.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLength {
		return badKey(fmt.Sprintf("must be 1 to %d characters", MaxKeyLength))
	}
	for i := range len(key) {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return badKey("must be visible ASCII characters (no spaces)")
		}
	}
	return nil
}

func badKey(description string) error {
	st := status.New(codes.InvalidArgument, "invalid Idempotency-Key: "+description)
	withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "Idempotency-Key", Description: description},
	}})
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// Fingerprint identifies a request: the hex SHA-256 of the full method name and the
// deterministic encoding of the request message.
func Fingerprint(fullMethod string, req proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(fullMethod))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Idempotent reports whether md declares `(shop.v1.idempotent) = true`.
func Idempotent(md protoreflect.MethodDescriptor) bool {
	v, _ := proto.GetExtension(md.Options(), shopv1.E_Idempotent).(bool)
	return v
}

// Methods returns the full method names of the RPCs of services that declare
// `(shop.v1.idempotent) = true`, in declaration order.
func Methods(services ...protoreflect.ServiceDescriptor) []string {
	var out []string
	for _, sd := range services {
		methods := sd.Methods()
		for i := range methods.Len() {
			if md := methods.Get(i); Idempotent(md) {
				out = append(out, fmt.Sprintf("/%s/%s", sd.FullName(), md.Name()))
			}
		}
	}
	return out
}

// declared returns the response type of every idempotent RPC of files, by full method name.
func declared(files *protoregistry.Files, types *protoregistry.Types) (map[string]protoreflect.MessageType, error) {
	out := map[string]protoreflect.MessageType{}
	for md := range rpcs.All(files) {
		if !Idempotent(md) {
			continue
		}
		method := rpcs.FullName(md)
		mt, err := types.FindMessageByName(md.Output().FullName())
		if err != nil {
			return nil, fmt.Errorf("idempotency: response of %s: %w", method, err)
		}
		out[method] = mt
	}
	return out, nil
}
