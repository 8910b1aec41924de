// Package accesstest runs a service's authorization matrix: every RPC called as every kind of
// caller, with a valid token or a broken one, over gRPC and over REST, against the code each
// caller must get, and again by the callers refused with the current etag or another caller's
// idempotency key, which must not change their answer. A service supplies its rows (how to call each RPC, what each identity gets)
// and how to make the user a row acts on; the identities, their tokens, the checks against the
// services' descriptors and access options, and the calls live here.
package accesstest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/shop/foundation/access"
	"github.com/acme/shop/foundation/etag"
	"github.com/acme/shop/foundation/idempotency"
	"github.com/acme/shop/foundation/service/servicetest"
)

// Identity is who makes a call in the matrix; it names the call's subtests.
type Identity string

// The identities every RPC is called as: no token, nine credentials that are not valid, and
// three valid users (another user, the owner of what the row acts on, an admin).
const (
	Anonymous       Identity = "anonymous"
	Malformed       Identity = "malformed header"
	Garbage         Identity = "garbage token"
	AlgNone         Identity = "alg none token"
	OtherKey        Identity = "token signed with another key"
	Altered         Identity = "token with an altered payload"
	Expired         Identity = "expired token"
	LoggedOut       Identity = "logged-out token"
	DeletedUser     Identity = "token of a deleted user"
	PasswordChanged Identity = "token from before a password change"
	Other           Identity = "another user's token"
	Owner           Identity = "owner"
	Admin           Identity = "admin"
)

// Identities are all the identities, in the order the matrix calls them.
var Identities = []Identity{Anonymous, Malformed, Garbage, AlgNone, OtherKey, Altered, Expired, LoggedOut, DeletedUser, PasswordChanged, Other, Owner, Admin}

// invalid are the identities whose credentials are not valid: each must get what a garbage
// token gets.
var invalid = []Identity{Malformed, Garbage, AlgNone, OtherKey, Altered, Expired, LoggedOut, DeletedUser, PasswordChanged}

// Expect builds a row's expectations: what an anonymous caller gets, what any credential that
// is not valid gets, and what the three valid identities get.
func Expect(anon, bad, other, owner, admin codes.Code) map[Identity]codes.Code {
	m := map[Identity]codes.Code{Anonymous: anon, Other: other, Owner: owner, Admin: admin}
	for _, id := range invalid {
		m[id] = bad
	}
	return m
}

// The expectations of the usual access rules.
var (
	// Public RPCs answer everyone and never look at the token.
	Public = Expect(codes.OK, codes.OK, codes.OK, codes.OK, codes.OK)
	// SignedIn RPCs answer any valid user.
	SignedIn = Expect(codes.Unauthenticated, codes.Unauthenticated, codes.OK, codes.OK, codes.OK)
	// OwnerOrAdmin RPCs answer the owner of what they act on, and admins.
	OwnerOrAdmin = Expect(codes.Unauthenticated, codes.Unauthenticated, codes.PermissionDenied, codes.OK, codes.OK)
	// AdminOnly RPCs answer admins only.
	AdminOnly = Expect(codes.Unauthenticated, codes.Unauthenticated, codes.PermissionDenied, codes.PermissionDenied, codes.OK)
)

// Tokens are the real tokens, issued by the customers service, that Headers makes the
// identities' headers of.
type Tokens struct {
	// Owner is a valid token of the owner; LoggedOut one the owner has logged out.
	Owner, LoggedOut string
	// Deleted is a token of a user deleted since; BeforePasswordChange one issued before its
	// user changed password.
	Deleted, BeforePasswordChange string
	// Other is a valid token of a user who is neither the owner nor an admin; Admin one of an
	// admin.
	Other, Admin string
}

// alteredPayload names an admin and never expires; it replaces the payload of the owner's token.
var alteredPayload = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"customers","sub":"00000000-0000-7000-8000-000000000001","jti":"x","iat":1,"exp":4102444800}`))

// Headers returns the Authorization header value of every identity ("" for Anonymous): the
// tokens of tok as bearer tokens, and the forged ones, for the user ownerID: signed with no
// algorithm, signed with another key, signed with secret (the customers service's) but
// expired, and the owner's token with its payload altered.
func Headers(t testing.TB, secret, ownerID string, tok Tokens) map[Identity]string {
	t.Helper()
	parts := strings.Split(tok.Owner, ".")
	if len(parts) != 3 {
		t.Fatalf("the owner's token has %d parts, want 3", len(parts))
	}
	hour := time.Now().Add(time.Hour)
	return map[Identity]string{
		Anonymous:       "",
		Malformed:       "Token " + tok.Owner,
		Garbage:         servicetest.Bearer("garbage.token.value"),
		AlgNone:         servicetest.Bearer(forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ownerID, hour)),
		OtherKey:        servicetest.Bearer(forge(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123"), ownerID, hour)),
		Altered:         servicetest.Bearer(parts[0] + "." + alteredPayload + "." + parts[2]),
		Expired:         servicetest.Bearer(forge(t, jwt.SigningMethodHS256, []byte(secret), ownerID, time.Now().Add(-time.Hour))),
		LoggedOut:       servicetest.Bearer(tok.LoggedOut),
		DeletedUser:     servicetest.Bearer(tok.Deleted),
		PasswordChanged: servicetest.Bearer(tok.BeforePasswordChange),
		Other:           servicetest.Bearer(tok.Other),
		Owner:           servicetest.Bearer(tok.Owner),
		Admin:           servicetest.Bearer(tok.Admin),
	}
}

// forge signs, with key and method, the claims the customers service would issue for sub,
// expiring at exp.
func forge(t testing.TB, method jwt.SigningMethod, key any, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, jwt.RegisteredClaims{
		Issuer: "customers", Subject: sub, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour)), ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Fixture is what a row acts on: a user (the owner) and what it owns, made afresh for every
// call that uses it up.
type Fixture interface {
	// Header returns the identity's Authorization header value, "" for none.
	Header(Identity) string
}

// Row is one RPC of the matrix: how to call it over both transports and what each identity
// must get. H is what calls the service (its clients), F the service's fixture.
type Row[H any, F Fixture] struct {
	Method string // full gRPC method name
	// GRPC calls the RPC through h with ctx, which carries the identity's authorization (and
	// the idempotency key the matrix sends), with etag in the request's `etag` field: "" for
	// none; rows whose request has no such field ignore it.
	GRPC func(ctx context.Context, h H, f F, etag string) error
	// REST is the request that calls the RPC through the gateway, path relative to the REST
	// base URL; nil for an RPC without a REST route.
	REST func(f F) (method, path string, body any)
	// ETag returns the current etag of what the row reads or changes (f's user, product or
	// cart), read by someone allowed to. Check requires it of every row whose request has an
	// `etag` field; a REST GET row with one is also sent If-None-Match.
	ETag func(h H, f F) (string, error)
	// OK is the HTTP status of success over REST (200 unless created or empty).
	OK int
	// Consumes says that a successful call uses up its fixture (revokes tokens, deletes the
	// owner or what it owns), so each success needs a fixture of its own.
	Consumes bool
	Want     map[Identity]codes.Code
}

// Check fails t unless every RPC of services has a row, every row expects a code of every
// identity, and what a row expects without a token agrees with the access its RPC declares in
// the proto: the matrix restates the API documentation; the access option is what the
// interceptor enforces. A row whose request takes an etag must say how to read the current
// one, and an idempotent RPC must let its owner or an admin use a key first.
func Check[H any, F Fixture](t testing.TB, rows []Row[H, F], services ...grpc.ServiceDesc) {
	t.Helper()
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.Method] = true
		if len(r.Want) != len(Identities) {
			t.Errorf("%s expects codes for %d identities, want all %d", r.Method, len(r.Want), len(Identities))
		}
		if declared, anon := access.Of(r.Method), r.Want[Anonymous]; (declared == access.Required) != (anon == codes.Unauthenticated) {
			t.Errorf("%s: the matrix expects %v without a token, but the proto declares %v", r.Method, anon, declared)
		}
		md := access.Method(r.Method)
		if md == nil {
			t.Errorf("%s is not a registered RPC", r.Method)
			continue
		}
		if takesETag(md) && r.ETag == nil {
			t.Errorf("%s takes an etag, but its row has no ETag to read the current one", r.Method)
		}
		if _, ok := keyHolder(r.Want); idempotency.Idempotent(md) && !ok {
			t.Errorf("%s is idempotent, but neither its owner nor an admin may call it to use a key first", r.Method)
		}
	}
	for _, sd := range services {
		for _, m := range sd.Methods {
			if name := "/" + sd.ServiceName + "/" + m.MethodName; !covered[name] {
				t.Errorf("RPC %s has no row in the authorization matrix", name)
			}
		}
	}
}

// takesETag reports whether md's request has an `etag` field (AIP-154).
func takesETag(md protoreflect.MethodDescriptor) bool {
	return md.Input().Fields().ByName("etag") != nil
}

// keyHolder returns who uses an idempotency key first in a row: its owner when the owner may
// call it, else an admin when an admin may.
func keyHolder(want map[Identity]codes.Code) (Identity, bool) {
	for _, id := range []Identity{Owner, Admin} {
		if want[id] == codes.OK {
			return id, true
		}
	}
	return "", false
}

// Run calls every row as every identity, in subtests "grpc/<method>/<identity>" through h and
// "rest/<method>/<identity>" at the REST base URL rest, and checks the code: over REST the
// status runtime.HTTPStatusFromCode gives, or the row's OK on success. The rows act on one
// fixture from newFixture, or on a fresh one for each success of a row that consumes it.
//
// Then the headers that name a resource or an earlier answer are sent by the identities
// refused, which must be refused the same: a key or an etag never lets one caller see another's
// data. Each refused identity calls a row that has an ETag again with the current etag of what
// it acts on, in the request's `etag` field ("grpc/<method>/<identity>/etag") and over REST in
// If-Match, or in If-None-Match for a GET ("rest/<method>/<identity>/If-Match"): never a 412,
// a 304 or a success. An idempotent RPC is called first by its owner (or an admin) with an
// Idempotency-Key, then with the same key and request by every other identity
// ("…/<identity>/Idempotency-Key"): each gets what it gets without the key, and over REST
// never an answer marked Idempotent-Replayed (the same interceptor serves gRPC).
func Run[H any, F Fixture](t *testing.T, rows []Row[H, F], h H, rest string, newFixture func() F) {
	t.Helper()
	shared := newFixture()
	for _, r := range rows {
		for _, id := range Identities {
			want := r.Want[id]
			fresh := r.Consumes && want == codes.OK
			f := shared
			if fresh {
				f = newFixture()
			}
			t.Run(fmt.Sprintf("grpc/%s/%s", r.Method, id), func(t *testing.T) {
				err := r.GRPC(servicetest.WithAuthorization(f.Header(id)), h, f, "")
				if got := status.Code(err); got != want {
					t.Errorf("got %v (%v), want %v", got, err, want)
				}
			})
			if r.REST == nil {
				continue
			}
			if fresh {
				f = newFixture()
			}
			t.Run(fmt.Sprintf("rest/%s/%s", r.Method, id), func(t *testing.T) {
				method, path, body := r.REST(f)
				res := servicetest.Do(t, method, rest+path, f.Header(id), body)
				if wantHTTP := r.status(want); res.Code != wantHTTP {
					t.Errorf("%s %s got %d (%s), want %d", method, path, res.Code, res.Raw, wantHTTP)
				}
			})
		}
		md := access.Method(r.Method)
		if r.ETag != nil && md != nil {
			r.runWithETag(t, h, rest, shared, takesETag(md))
		}
		if md != nil && idempotency.Idempotent(md) {
			f := shared
			if r.Consumes {
				f = newFixture()
			}
			r.runWithKey(t, h, rest, f)
		}
	}
}

// status is the HTTP status of code over REST for r.
func (r Row[H, F]) status(code codes.Code) int {
	if code == codes.OK {
		return r.OK
	}
	return runtime.HTTPStatusFromCode(code)
}

// runWithETag calls r as every identity it refuses, with the current etag of what it acts on:
// over gRPC in the request (when it takes one), over REST in If-None-Match for a GET and
// If-Match otherwise.
func (r Row[H, F]) runWithETag(t *testing.T, h H, rest string, f F, grpcToo bool) {
	t.Helper()
	current := func(t *testing.T) string {
		t.Helper()
		tag, err := r.ETag(h, f)
		if err != nil || tag == "" {
			t.Fatalf("reading the current etag: %q, %v", tag, err)
		}
		return tag
	}
	for _, id := range Identities {
		want := r.Want[id]
		if want == codes.OK {
			continue
		}
		if grpcToo {
			t.Run(fmt.Sprintf("grpc/%s/%s/etag", r.Method, id), func(t *testing.T) {
				err := r.GRPC(servicetest.WithAuthorization(f.Header(id)), h, f, current(t))
				if got := status.Code(err); got != want {
					t.Errorf("with the current etag: got %v (%v), want %v", got, err, want)
				}
			})
		}
		if r.REST == nil {
			continue
		}
		method, path, body := r.REST(f)
		header := "If-Match"
		if method == http.MethodGet {
			header = "If-None-Match"
		}
		t.Run(fmt.Sprintf("rest/%s/%s/%s", r.Method, id, header), func(t *testing.T) {
			res := servicetest.DoHeader(t, method, rest+path, f.Header(id), http.Header{header: {etag.Quote(current(t))}}, body)
			if wantHTTP := r.status(want); res.Code != wantHTTP {
				t.Errorf("%s %s with %s the current ETag: got %d (%s), want %d", method, path, header, res.Code, res.Raw, wantHTTP)
			}
		})
	}
}

// runWithKey has r's key holder call it with an idempotency key, then every other identity
// send the same request with the same key: over gRPC, and over REST with a key of its own.
func (r Row[H, F]) runWithKey(t *testing.T, h H, rest string, f F) {
	t.Helper()
	holder, _ := keyHolder(r.Want)
	grpcKey, restKey := "matrix-grpc-"+uuid.NewString(), "matrix-rest-"+uuid.NewString()
	call := func(id Identity) error {
		ctx := metadata.AppendToOutgoingContext(servicetest.WithAuthorization(f.Header(id)), idempotency.MetadataKey, grpcKey)
		return r.GRPC(ctx, h, f, "")
	}
	t.Run(fmt.Sprintf("grpc/%s/%s/Idempotency-Key first", r.Method, holder), func(t *testing.T) {
		if err := call(holder); err != nil {
			t.Fatalf("the first call with the key: %v", err)
		}
	})
	for _, id := range Identities {
		if id == holder {
			continue
		}
		t.Run(fmt.Sprintf("grpc/%s/%s/Idempotency-Key", r.Method, id), func(t *testing.T) {
			if got, want := status.Code(call(id)), r.Want[id]; got != want {
				t.Errorf("with the key %s used it: got %v, want %v", holder, got, want)
			}
		})
	}
	if r.REST == nil {
		return
	}
	send := func(t *testing.T, id Identity) servicetest.Response {
		t.Helper()
		method, path, body := r.REST(f)
		return servicetest.DoHeader(t, method, rest+path, f.Header(id), http.Header{"Idempotency-Key": {restKey}}, body)
	}
	t.Run(fmt.Sprintf("rest/%s/%s/Idempotency-Key first", r.Method, holder), func(t *testing.T) {
		if res := send(t, holder); res.Code != r.OK {
			t.Fatalf("the first call with the key: %d (%s), want %d", res.Code, res.Raw, r.OK)
		}
	})
	for _, id := range Identities {
		if id == holder {
			continue
		}
		t.Run(fmt.Sprintf("rest/%s/%s/Idempotency-Key", r.Method, id), func(t *testing.T) {
			res := send(t, id)
			if wantHTTP := r.status(r.Want[id]); res.Code != wantHTTP || res.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("with the key %s used: got %d Idempotent-Replayed %q (%s), want %d and no replay",
					holder, res.Code, res.Header.Get("Idempotent-Replayed"), res.Raw, wantHTTP)
			}
		})
	}
}
