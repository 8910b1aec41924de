package accesstest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/acme/shop/foundation/access"
	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
)

const secret = "test-secret-test-secret-test-secret-0123"

// TestHeadersAreWhatTheirIdentitiesSay: a matrix that passes proves nothing if a forged token
// is rejected for another reason than the one its identity names, or the owner's is not valid.
func TestHeadersAreWhatTheirIdentitiesSay(t *testing.T) {
	const ownerID = "00000000-0000-7000-8000-0000000000aa"
	owner := forge(t, jwt.SigningMethodHS256, []byte(secret), ownerID, time.Now().Add(time.Hour))
	headers := Headers(t, secret, ownerID, Tokens{
		Owner: owner, LoggedOut: "logged-out", Deleted: "deleted", BeforePasswordChange: "before",
		Other: "other", Admin: "admin",
	})
	if len(headers) != len(Identities) {
		t.Errorf("got headers for %d identities, want all %d", len(headers), len(Identities))
	}
	for id, want := range map[Identity]string{
		Anonymous: "", Malformed: "Token " + owner, LoggedOut: "Bearer logged-out", DeletedUser: "Bearer deleted",
		PasswordChanged: "Bearer before", Other: "Bearer other", Owner: "Bearer " + owner, Admin: "Bearer admin",
	} {
		if got := headers[id]; got != want {
			t.Errorf("%s: got %q, want %q", id, got, want)
		}
	}
	parse := func(id Identity) error {
		_, err := jwt.Parse(strings.TrimPrefix(headers[id], "Bearer "),
			func(*jwt.Token) (any, error) { return []byte(secret), nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
		return err
	}
	if err := parse(Owner); err != nil {
		t.Fatalf("the owner's token: %v", err)
	}
	for id, want := range map[Identity]error{
		Garbage:  jwt.ErrTokenMalformed,
		AlgNone:  jwt.ErrTokenSignatureInvalid,
		OtherKey: jwt.ErrTokenSignatureInvalid,
		Altered:  jwt.ErrTokenSignatureInvalid,
		Expired:  jwt.ErrTokenExpired,
	} {
		if err := parse(id); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", id, err, want)
		}
	}
}

// TestExpect: every identity gets a code, and every credential that is not valid gets the same.
func TestExpect(t *testing.T) {
	m := Expect(codes.OK, codes.Unauthenticated, codes.PermissionDenied, codes.NotFound, codes.Internal)
	want := map[Identity]codes.Code{Anonymous: codes.OK, Other: codes.PermissionDenied, Owner: codes.NotFound, Admin: codes.Internal}
	for _, id := range Identities {
		w, ok := want[id]
		if !ok {
			w = codes.Unauthenticated
		}
		if got, ok := m[id]; !ok || got != w {
			t.Errorf("%s: got %v (set: %v), want %v", id, got, ok, w)
		}
	}
}

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.errors++ }

type noFixture struct{}

func (noFixture) Header(Identity) string { return "" }

// TestCheckAsksForWhatTheHeadersNeed: a row whose request takes an etag but that cannot read
// the current one, or an idempotent RPC that neither its owner nor an admin may call first,
// fails Check: Run would otherwise skip its headers silently.
func TestCheckAsksForWhatTheHeadersNeed(t *testing.T) {
	current := func(struct{}, noFixture) (string, error) { return "tag", nil }
	rows := func(change func(*Row[struct{}, noFixture])) []Row[struct{}, noFixture] {
		var out []Row[struct{}, noFixture]
		for _, m := range cartv1.ProductService_ServiceDesc.Methods {
			r := Row[struct{}, noFixture]{Method: "/" + cartv1.ProductService_ServiceDesc.ServiceName + "/" + m.MethodName, Want: AdminOnly, ETag: current}
			if access.Of(r.Method) == access.Public {
				r.Want = Public
			}
			change(&r)
			out = append(out, r)
		}
		return out
	}
	for name, tc := range map[string]struct {
		change func(*Row[struct{}, noFixture])
		want   int
	}{
		"complete": {func(*Row[struct{}, noFixture]) {}, 0},
		"no ETag for UpdateProduct": {func(r *Row[struct{}, noFixture]) {
			if r.Method == cartv1.ProductService_UpdateProduct_FullMethodName {
				r.ETag = nil
			}
		}, 1},
		"nobody may use a key first": {func(r *Row[struct{}, noFixture]) {
			if r.Method == cartv1.ProductService_CreateProduct_FullMethodName {
				r.Want = Expect(codes.Unauthenticated, codes.Unauthenticated, codes.PermissionDenied, codes.PermissionDenied, codes.PermissionDenied)
			}
		}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{TB: t}
			Check(rec, rows(tc.change), cartv1.ProductService_ServiceDesc)
			if rec.errors != tc.want {
				t.Errorf("Check reported %d errors, want %d", rec.errors, tc.want)
			}
		})
	}
}
