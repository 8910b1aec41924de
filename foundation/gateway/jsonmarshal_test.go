package gateway

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// protojsonOf is what grpc-gateway's JSONPb with the contract's options writes, compacted:
// protojson adds a space after some commas, at random per build.
func protojsonOf(t *testing.T, m proto.Message) []byte {
	t.Helper()
	want, err := (&runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}}).Marshal(m)
	if err != nil {
		t.Fatalf("protojson: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, want); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJSONMarshalerWritesWhatProtojsonWrites fills every message of the contract at random
// (each field set or not, strings with escapes and non-ASCII, timestamps with every fraction
// length, lists of zero to three) many times and compares the marshaler's output with
// protojson's, byte for byte once protojson's random spaces are removed.
func TestJSONMarshalerWritesWhatProtojsonWrites(t *testing.T) {
	j := newJSONMarshaler()
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test data
	planned := 0
	for _, file := range []protoreflect.FileDescriptor{
		cartv1.File_cart_v1_cart_proto, cartv1.File_cart_v1_product_proto,
		customersv1.File_customers_v1_user_proto, customersv1.File_customers_v1_auth_proto,
	} {
		msgs := file.Messages()
		for i := range msgs.Len() {
			md := msgs.Get(i)
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				t.Fatal(err)
			}
			if j.plan(md) != nil {
				planned++
			}
			t.Run(string(md.FullName()), func(t *testing.T) {
				for range 200 {
					m := mt.New()
					fill(rng, m, 0)
					got, err := j.Marshal(m.Interface())
					if err != nil {
						t.Fatal(err)
					}
					if want := protojsonOf(t, m.Interface()); !bytes.Equal(got, want) {
						t.Fatalf("got  %s\nwant %s", got, want)
					}
				}
			})
		}
	}
	if planned == 0 {
		t.Error("no message of the contract is written without protojson")
	}
	// The responses of the busiest routes are written by the plans.
	for _, m := range []proto.Message{&cartv1.Cart{}, &cartv1.Product{}, &cartv1.ListProductsResponse{}, &customersv1.User{},
		&customersv1.ListUsersResponse{}, &customersv1.LoginResponse{}} {
		if j.plan(m.ProtoReflect().Descriptor()) == nil {
			t.Errorf("%T is left to protojson", m)
		}
	}
}

// TestJSONMarshalerLeavesTheRestToProtojson: what the plans do not cover (a status body with
// details, invalid UTF-8, a timestamp out of range, values that are not messages) comes out as
// protojson writes it, errors included.
func TestJSONMarshalerLeavesTheRestToProtojson(t *testing.T) {
	j := newJSONMarshaler()
	st, err := status.New(codes.InvalidArgument, "bad <input> & \"quotes\"").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "quantity", Description: "must be 1–99"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]proto.Message{
		"status with details": st.Proto(),
		"empty cart":          &cartv1.Cart{},
		"nil product":         (*cartv1.Product)(nil),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := j.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, got); err != nil {
				t.Fatal(err)
			}
			if want := protojsonOf(t, m); !bytes.Equal(compact.Bytes(), want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
	for name, m := range map[string]proto.Message{
		"invalid UTF-8":          &cartv1.Product{Name: "bad \xff"},
		"timestamp out of range": &cartv1.Product{CreatedAt: &timestamppb.Timestamp{Seconds: 1 << 40}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := j.Marshal(m); err == nil {
				t.Error("got no error, want protojson's")
			}
		})
	}
	got, err := j.Marshal(map[string]string{"status": "ok"})
	if err != nil || string(got) != `{"status":"ok"}` {
		t.Errorf("got %s, %v; want {\"status\":\"ok\"}", got, err)
	}
}

var fillStrings = []string{"", "plain", "Käse & <b>\"quoted\"</b>", "tab\there\nline\\", "\x01\x1f\u2028\U0001F600", "\ufffd"}

// fill sets each field of m at random, or leaves it unset.
func fill(rng *rand.Rand, m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if rng.IntN(3) == 0 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range rng.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fillMessage(rng, e.Message(), depth)
					l.Append(e)
				} else {
					l.Append(scalar(rng, fd))
				}
			}
		case fd.IsMap():
		case fd.Kind() == protoreflect.MessageKind:
			fillMessage(rng, m.Mutable(fd).Message(), depth)
		default:
			m.Set(fd, scalar(rng, fd))
		}
	}
}

func fillMessage(rng *rand.Rand, m protoreflect.Message, depth int) {
	if m.Descriptor().FullName() == timestampName {
		nanos := []int32{0, 5e8, 123e6, 123456e3, 123456789, 1}[rng.IntN(6)]
		// From year 1 to 9999, most of them around now.
		secs := []int64{minTimestampSeconds, maxTimestampSeconds, 0, rng.Int64N(maxTimestampSeconds-minTimestampSeconds) + minTimestampSeconds}[rng.IntN(4)]
		if rng.IntN(2) == 0 {
			secs = rng.Int64N(4e9) - 1e9
		}
		m.Set(m.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfInt64(secs))
		m.Set(m.Descriptor().Fields().ByNumber(2), protoreflect.ValueOfInt32(nanos))
		return
	}
	if depth < 3 {
		fill(rng, m, depth+1)
	}
}

func scalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(strings.Repeat(fillStrings[rng.IntN(len(fillStrings))], 1+rng.IntN(2)))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(fillStrings[rng.IntN(len(fillStrings))]))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(rng.Int32() - 1<<30)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(rng.Int64() - 1<<62)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(rng.Uint32())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(rng.Uint64())
	case protoreflect.EnumKind:
		// A known value or, now and then, a number the enum does not name.
		vals := fd.Enum().Values()
		if rng.IntN(5) == 0 {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(100 + rng.IntN(5)))
		}
		return protoreflect.ValueOfEnum(vals.Get(rng.IntN(vals.Len())).Number())
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(rng.Float32() * 1e6)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(rng.NormFloat64() * 1e12)
	default:
		return fd.Default()
	}
}

// BenchmarkJSONMarshal compares the marshaler with grpc-gateway's JSONPb on the responses of
// GET /api/v1/carts/me (a 10-line cart) and GET /api/v1/products (a page of 20).
func BenchmarkJSONMarshal(b *testing.B) {
	cart := &cartv1.Cart{UserId: "0190a5f2-7c1e-7d3a-9b4e-2f6c8d0a1b2c", TotalQuantity: 20, TotalPrice: "246.80", CurrencyCode: "USD", Etag: `W/"c0ffee0123456789"`}
	for range 10 {
		cart.Items = append(cart.Items, &cartv1.CartItem{ProductId: "0190a5f2-7c1e-7d3a-9b4e-2f6c8d0a1b2d", Name: "Product 01", UnitPrice: "12.34", Quantity: 2, LineTotal: "24.68"})
	}
	page := &cartv1.ListProductsResponse{NextPageToken: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}
	for range 20 {
		page.Products = append(page.Products, &cartv1.Product{Id: "0190a5f2-7c1e-7d3a-9b4e-2f6c8d0a1b2d", Name: "Product 01", Description: "A product for the benchmark.",
			Price: "12.34", CurrencyCode: "USD", CreatedAt: timestamppb.Now(), UpdatedAt: timestamppb.Now(), Etag: `W/"c0ffee0123456789"`})
	}
	protojsonPb := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}}
	for name, m := range map[string]proto.Message{"cart": cart, "products": page} {
		for mname, ma := range map[string]runtime.Marshaler{"protojson": protojsonPb, "plan": newJSONMarshaler()} {
			b.Run(name+"/"+mname, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ma.Marshal(m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
