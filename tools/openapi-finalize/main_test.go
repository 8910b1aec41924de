package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// image returns a FileDescriptorSet, as buf build writes it, with the shop.v1.access option
// and a service whose methods declare, by name: Open public, Maybe optional, Closed required,
// and Default nothing. withOption false leaves the option's declaration out.
func image(t *testing.T, withOption bool) []byte {
	t.Helper()
	const number = 50001
	options := func(value uint64) *descriptorpb.MethodOptions {
		opts := &descriptorpb.MethodOptions{}
		// The option as the compiler writes it: a field this program has no type for.
		opts.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, number, protowire.VarintType), value))
		return opts
	}
	method := func(name string, opts *descriptorpb.MethodOptions) *descriptorpb.MethodDescriptorProto {
		return &descriptorpb.MethodDescriptorProto{
			Name: proto.String(name), InputType: proto.String(".demo.v1.Empty"), OutputType: proto.String(".demo.v1.Empty"), Options: opts,
		}
	}
	value := func(name string, n int32) *descriptorpb.EnumValueDescriptorProto {
		return &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(n)}
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
	}}
	if withOption {
		set.File = append(set.File, &descriptorpb.FileDescriptorProto{
			Name: proto.String("shop/v1/access.proto"), Package: proto.String("shop.v1"), Syntax: proto.String("proto3"),
			Dependency: []string{"google/protobuf/descriptor.proto"},
			EnumType: []*descriptorpb.EnumDescriptorProto{{
				Name:  proto.String("Access"),
				Value: []*descriptorpb.EnumValueDescriptorProto{value("ACCESS_UNSPECIFIED", 0), value("ACCESS_REQUIRED", 1), value("ACCESS_OPTIONAL", 2), value("ACCESS_PUBLIC", 3)},
			}},
			Extension: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("access"), Number: proto.Int32(number), JsonName: proto.String("access"),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum(),
				TypeName: proto.String(".shop.v1.Access"), Extendee: proto.String(".google.protobuf.MethodOptions"),
			}},
		})
	}
	set.File = append(set.File, &descriptorpb.FileDescriptorProto{
		Name: proto.String("demo/v1/demo.proto"), Package: proto.String("demo.v1"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Empty")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Demo"),
			Method: []*descriptorpb.MethodDescriptorProto{
				method("Open", options(3)), method("Maybe", options(2)), method("Closed", options(1)), method("Default", nil),
			},
		}},
	})
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAccessByOperation(t *testing.T) {
	got, err := accessByOperation(image(t, true))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Demo_Open":    "ACCESS_PUBLIC",
		"Demo_Maybe":   "ACCESS_OPTIONAL",
		"Demo_Closed":  "ACCESS_REQUIRED",
		"Demo_Default": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("access by operationId (-want +got):\n%s", diff)
	}
}

func TestAccessByOperationNeedsTheOption(t *testing.T) {
	if _, err := accessByOperation(image(t, false)); err == nil {
		t.Error("an image without shop.v1.access was accepted")
	}
}

func TestApplySecurity(t *testing.T) {
	access := map[string]string{
		"Demo_Open": "ACCESS_PUBLIC", "Demo_Maybe": "ACCESS_OPTIONAL", "Demo_Closed": "ACCESS_REQUIRED", "Demo_Default": "",
	}
	required := []any{map[string]any{"BearerAuth": []any{}}}
	anonymous := map[string]any{}
	tests := []opTest{
		{
			name: "public is anonymous",
			op:   map[string]any{"operationId": "Demo_Open"},
			want: map[string]any{"operationId": "Demo_Open", "security": []any{anonymous}},
		},
		{
			name: "optional is anonymous or the document's requirement",
			op:   map[string]any{"operationId": "Demo_Maybe"},
			want: map[string]any{"operationId": "Demo_Maybe", "security": []any{anonymous, required[0]}},
		},
		{
			name: "required inherits the document's requirement",
			op:   map[string]any{"operationId": "Demo_Closed", "security": []any{anonymous}},
			want: map[string]any{"operationId": "Demo_Closed"},
		},
		{
			name: "no option is required",
			op:   map[string]any{"operationId": "Demo_Default", "security": []any{anonymous}},
			want: map[string]any{"operationId": "Demo_Default"},
		},
		{
			name:    "an operation of no RPC is refused",
			op:      map[string]any{"operationId": "Demo_Missing"},
			wantErr: true,
		},
	}
	applyEach(t, tests, func(op map[string]any) error { return applySecurity(op, access, required) })
}

func TestApplySuccessStatus(t *testing.T) {
	body := map[string]any{"description": "the user"}
	tests := []opTest{
		{
			name: "no extension leaves 200",
			op:   map[string]any{"responses": map[string]any{"200": body}},
			want: map[string]any{"responses": map[string]any{"200": body}},
		},
		{
			name: "201 moves the body",
			op:   map[string]any{"x-success-status": 201.0, "responses": map[string]any{"200": body, "default": body}},
			want: map[string]any{"responses": map[string]any{"201": body, "default": body}},
		},
		{
			name: "204 drops the body",
			op:   map[string]any{"x-success-status": 204.0, "responses": map[string]any{"200": body}},
			want: map[string]any{"responses": map[string]any{"204": map[string]any{"description": "No Content: the request succeeded and the body is empty."}}},
		},
		{
			name:    "other codes are refused",
			op:      map[string]any{"x-success-status": 202.0, "responses": map[string]any{"200": body}},
			wantErr: true,
		},
		{
			name:    "missing 200 is refused",
			op:      map[string]any{"x-success-status": 201.0, "responses": map[string]any{}},
			wantErr: true,
		},
	}
	applyEach(t, tests, applySuccessStatus)
}

// opTest is an operation of the document before and after one finalizing step.
type opTest struct {
	name    string
	op      map[string]any
	want    map[string]any
	wantErr bool
}

// applyEach applies step to each test's operation and compares the result.
func applyEach(t *testing.T, tests []opTest, step func(op map[string]any) error) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := step(tt.op)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, tt.op); diff != "" {
				t.Errorf("operation (-want +got):\n%s", diff)
			}
		})
	}
}
