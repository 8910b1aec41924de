package grpcserver

import (
	"errors"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	cartv1 "github.com/acme/shop/protos/gen/go/cart/v1"
	customersv1 "github.com/acme/shop/protos/gen/go/customers/v1"
)

// TestSharedRules checks the predefined rules of protos/shop/v1/validate.proto as the fields
// that use them see them: each bad value is reported for its own field.
func TestSharedRules(t *testing.T) {
	const uuid = "0190a0b0-1234-7abc-8def-0123456789ab"
	s := proto.String
	tests := []struct {
		name string
		msg  proto.Message
		want []string // the fields reported, none for a valid message
	}{
		{"user_id me", &customersv1.GetUserRequest{UserId: "me"}, nil},
		{"user_id UUID", &cartv1.GetCartRequest{UserId: uuid}, nil},
		{"user_id upper-case UUID", &customersv1.DeleteUserRequest{UserId: strings.ToUpper(uuid)}, nil},
		{"user_id empty", &customersv1.GetUserRequest{}, []string{"user_id"}},
		{"user_id ME", &cartv1.ClearCartRequest{UserId: "ME"}, []string{"user_id"}},
		{"user_id with a space", &cartv1.AddItemRequest{UserId: "me ", ProductId: uuid, Quantity: 1}, []string{"user_id"}},
		{"user_id not a UUID", &customersv1.ChangePasswordRequest{UserId: "not-a-uuid", NewPassword: "password1"}, []string{"user_id"}},
		{"email and password valid", &customersv1.CreateUserRequest{Email: " a@example.com ", Password: "12345678"}, nil},
		{"email invalid, password short", &customersv1.CreateUserRequest{Email: "nope", Password: "1234567"}, []string{"email", "password"}},
		{"email and password too long", &customersv1.CreateUserRequest{Email: strings.Repeat("a", 243) + "@example.com", Password: strings.Repeat("é", 129)}, []string{"email", "password"}},
		{"email absent from an update", &customersv1.UpdateUserRequest{UserId: "me"}, nil},
		{"email invalid in an update", &customersv1.UpdateUserRequest{UserId: "me", Email: s("nope")}, []string{"email"}},
		{"price lowest", &cartv1.CreateProductRequest{Name: "x", Price: "0.01"}, nil},
		{"price highest", &cartv1.CreateProductRequest{Name: "x", Price: "1000000.00"}, nil},
		{"price zero", &cartv1.CreateProductRequest{Name: "x", Price: "0"}, []string{"price"}},
		{"price above the limit", &cartv1.CreateProductRequest{Name: "x", Price: "1000000.01"}, []string{"price"}},
		{"price with three fraction digits", &cartv1.CreateProductRequest{Name: "x", Price: "1.234"}, []string{"price"}},
		{"price not a number", &cartv1.UpdateProductRequest{ProductId: uuid, Price: s("abc")}, []string{"price"}},
		{"price absent from an update", &cartv1.UpdateProductRequest{ProductId: uuid}, nil},
	}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := v.Validate(tt.msg); err != nil {
				var verr *protovalidate.ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("got %v, want a validation error", err)
				}
				for _, fv := range violations(verr) {
					got = append(got, fv.Field)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reported fields (-want +got):\n%s", diff)
			}
		})
	}
}
