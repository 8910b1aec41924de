package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Field numbers of the options in shop.v1.
const (
	accessNumber     = 50001
	successNumber    = 50002
	idempotentNumber = 50003
)

// image returns a FileDescriptorSet, as buf build writes it, declaring the options named (of
// accessOption and successOption) and a service whose methods declare, by name: Open public,
// Maybe optional, Closed required, Default nothing, Created and NoContent their statuses,
// Unspecified SUCCESS_UNSPECIFIED, Unknown a status the enum does not name, and Retried
// idempotent. Its messages' `etag` fields make Read answer one resource (ReadResponse.thing),
// Write a conditional write of one (its request's etag, its response a Thing), and neither
// Pair (two things) nor List (repeated things) answer one.
func image(t *testing.T, declare ...string) []byte {
	t.Helper()
	options := func(number protowire.Number, value uint64) *descriptorpb.MethodOptions {
		opts := &descriptorpb.MethodOptions{}
		// The option as the compiler writes it: a field this program has no type for.
		opts.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, number, protowire.VarintType), value))
		return opts
	}
	typed := func(name, in, out string) *descriptorpb.MethodDescriptorProto {
		return &descriptorpb.MethodDescriptorProto{Name: proto.String(name), InputType: proto.String(".demo.v1." + in), OutputType: proto.String(".demo.v1." + out)}
	}
	method := func(name string, opts *descriptorpb.MethodOptions) *descriptorpb.MethodDescriptorProto {
		m := typed(name, "Empty", "Empty")
		m.Options = opts
		return m
	}
	field := func(name string, number int32, label descriptorpb.FieldDescriptorProto_Label, message string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(number), JsonName: proto.String(name), Label: label.Enum()}
		if message == "" {
			f.Type = descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
		} else {
			f.Type, f.TypeName = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), proto.String(".demo.v1."+message)
		}
		return f
	}
	optional, repeated := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	message := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	value := func(name string, n int32) *descriptorpb.EnumValueDescriptorProto {
		return &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(n)}
	}
	extension := func(name string, number int32, enum string) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(number), JsonName: proto.String(name),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum(),
			TypeName: proto.String(".shop.v1." + enum), Extendee: proto.String(".google.protobuf.MethodOptions"),
		}
	}
	shop := &descriptorpb.FileDescriptorProto{
		Name: proto.String("shop/v1/options.proto"), Package: proto.String("shop.v1"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/descriptor.proto"},
	}
	for _, name := range declare {
		switch name {
		case accessOption:
			shop.EnumType = append(shop.EnumType, &descriptorpb.EnumDescriptorProto{
				Name:  proto.String("Access"),
				Value: []*descriptorpb.EnumValueDescriptorProto{value("ACCESS_UNSPECIFIED", 0), value("ACCESS_REQUIRED", 1), value("ACCESS_OPTIONAL", 2), value("ACCESS_PUBLIC", 3)},
			})
			shop.Extension = append(shop.Extension, extension("access", accessNumber, "Access"))
		case successOption:
			shop.EnumType = append(shop.EnumType, &descriptorpb.EnumDescriptorProto{
				Name:  proto.String("Success"),
				Value: []*descriptorpb.EnumValueDescriptorProto{value("SUCCESS_UNSPECIFIED", 0), value("SUCCESS_CREATED", 201), value("SUCCESS_NO_CONTENT", 204)},
			})
			shop.Extension = append(shop.Extension, extension("success", successNumber, "Success"))
		case idempotentOption:
			shop.Extension = append(shop.Extension, &descriptorpb.FieldDescriptorProto{
				Name: proto.String("idempotent"), Number: proto.Int32(idempotentNumber), JsonName: proto.String("idempotent"),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_BOOL.Enum(),
				Extendee: proto.String(".google.protobuf.MethodOptions"),
			})
		default:
			t.Fatalf("no option %s", name)
		}
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		shop,
		{
			Name: proto.String("demo/v1/demo.proto"), Package: proto.String("demo.v1"), Syntax: proto.String("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{
				message("Empty"),
				message("Thing", field("name", 1, optional, ""), field("etag", 2, optional, "")),
				message("ReadResponse", field("thing", 1, optional, "Thing"), field("next", 2, optional, "Empty")),
				message("WriteRequest", field("thing", 1, optional, "Thing"), field("etag", 2, optional, "")),
				message("PairResponse", field("first", 1, optional, "Thing"), field("second", 2, optional, "Thing")),
				message("ListResponse", field("things", 1, repeated, "Thing")),
			},
			Service: []*descriptorpb.ServiceDescriptorProto{{
				Name: proto.String("Demo"),
				Method: []*descriptorpb.MethodDescriptorProto{
					method("Open", options(accessNumber, 3)), method("Maybe", options(accessNumber, 2)),
					method("Closed", options(accessNumber, 1)), method("Default", nil),
					method("Created", options(successNumber, 201)), method("NoContent", options(successNumber, 204)),
					method("Unspecified", options(successNumber, 0)), method("Unknown", options(successNumber, 202)),
					method("Retried", options(idempotentNumber, 1)),
					typed("Read", "Empty", "ReadResponse"), typed("Write", "WriteRequest", "Thing"),
					typed("Pair", "Empty", "PairResponse"), typed("List", "Empty", "ListResponse"),
				},
			}},
		},
	}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRPCsByOperation(t *testing.T) {
	got, err := rpcsByOperation(image(t, accessOption, successOption, idempotentOption))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]rpc{
		"Demo_Open":        {access: "ACCESS_PUBLIC", success: 200},
		"Demo_Maybe":       {access: "ACCESS_OPTIONAL", success: 200},
		"Demo_Closed":      {access: "ACCESS_REQUIRED", success: 200},
		"Demo_Default":     {access: "", success: 200},
		"Demo_Created":     {success: 201},
		"Demo_NoContent":   {success: 204},
		"Demo_Unspecified": {success: 200},
		"Demo_Unknown":     {success: 200},
		"Demo_Retried":     {success: 200, idempotent: true},
		"Demo_Read":        {success: 200, etag: true},
		"Demo_Write":       {success: 200, ifMatch: true, etag: true},
		"Demo_Pair":        {success: 200},
		"Demo_List":        {success: 200},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(rpc{})); diff != "" {
		t.Errorf("RPCs by operationId (-want +got):\n%s", diff)
	}
}

func TestRPCsByOperationNeedsTheOptions(t *testing.T) {
	for _, missing := range []string{accessOption, successOption} {
		t.Run(missing, func(t *testing.T) {
			var declare []string
			for _, o := range []string{accessOption, successOption} {
				if o != missing {
					declare = append(declare, o)
				}
			}
			if _, err := rpcsByOperation(image(t, declare...)); err == nil {
				t.Errorf("an image without %s was accepted", missing)
			}
		})
	}
}

// TestRPCsByOperationBeforeIdempotent reads an image of protos from before the idempotent
// option: no RPC is idempotent.
func TestRPCsByOperationBeforeIdempotent(t *testing.T) {
	got, err := rpcsByOperation(image(t, accessOption, successOption))
	if err != nil {
		t.Fatal(err)
	}
	if r := got["Demo_Retried"]; r.idempotent {
		t.Errorf("Demo_Retried idempotent = true, want false")
	}
}

func TestApplyIdempotencyKey(t *testing.T) {
	op := map[string]any{"parameters": []any{map[string]any{"name": "id", "in": "path"}}, "responses": map[string]any{"201": map[string]any{}}}
	if err := applyIdempotencyKey(op, 201); err != nil {
		t.Fatal(err)
	}
	params, _ := op["parameters"].([]any)
	if len(params) != 2 {
		t.Fatalf("got %d parameters, want 2", len(params))
	}
	header, _ := params[1].(map[string]any)
	if header["name"] != "Idempotency-Key" || header["in"] != "header" {
		t.Errorf("got parameter %v, want the Idempotency-Key header", header)
	}
	responses, _ := op["responses"].(map[string]any)
	if diff := cmp.Diff([]string{"201", "400", "409", "422", "429"}, slices.Sorted(maps.Keys(responses))); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
	created, _ := responses["201"].(map[string]any)
	headers, _ := created["headers"].(map[string]any)
	if _, ok := headers["Idempotent-Replayed"]; !ok {
		t.Errorf("201 response headers = %v, want Idempotent-Replayed", headers)
	}
	if err := applyIdempotencyKey(map[string]any{"responses": map[string]any{"200": map[string]any{}}}, 201); err == nil {
		t.Error("an operation without its 201 response was accepted")
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name                 string
		op                   map[string]any
		summary, description string
	}{
		{
			name:        "one paragraph",
			op:          map[string]any{"summary": "Get returns a thing. Public;\nanyone may call it."},
			summary:     "Get returns a thing.",
			description: "Get returns a thing. Public;\nanyone may call it.",
		},
		{
			name:        "a sentence over two lines",
			op:          map[string]any{"summary": "Get returns a thing (by ID:\nIDs sort by time). Public."},
			summary:     "Get returns a thing (by ID: IDs sort by time).",
			description: "Get returns a thing (by ID:\nIDs sort by time). Public.",
		},
		{
			name:        "two paragraphs",
			op:          map[string]any{"summary": "Get returns a thing.", "description": "More about it."},
			summary:     "Get returns a thing.",
			description: "Get returns a thing.\n\nMore about it.",
		},
		{name: "no comment", op: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			describe(tt.op)
			summary, _ := tt.op["summary"].(string)
			description, _ := tt.op["description"].(string)
			if summary != tt.summary || description != tt.description {
				t.Errorf("got summary %q, description %q; want %q, %q", summary, description, tt.summary, tt.description)
			}
		})
	}
}

func TestPruneSchemas(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(`{
		"paths": {"/a": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}}},
		"components": {
			"securitySchemes": {"S": {"description": {"$ref": "#/components/schemas/S"}}},
			"schemas": {
				"A": {"properties": {"b": {"items": {"$ref": "#/components/schemas/B"}}}},
				"B": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
				"S": {},
				"Unused": {"properties": {"a": {"$ref": "#/components/schemas/A"}}},
				"Loop": {"properties": {"l": {"$ref": "#/components/schemas/Loop"}}}
			}
		}
	}`), &doc); err != nil {
		t.Fatal(err)
	}
	pruneSchemas(doc)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	if diff := cmp.Diff([]string{"A", "B", "S"}, slices.Sorted(maps.Keys(schemas))); diff != "" {
		t.Errorf("schemas (-want +got):\n%s", diff)
	}
}

func TestApplyIfMatch(t *testing.T) {
	op := map[string]any{"parameters": []any{map[string]any{"name": "id", "in": "path"}}, "responses": map[string]any{"200": map[string]any{}}}
	applyIfMatch(op)
	params, _ := op["parameters"].([]any)
	if len(params) != 2 {
		t.Fatalf("got %d parameters, want 2", len(params))
	}
	header, _ := params[1].(map[string]any)
	if header["name"] != "If-Match" || header["in"] != "header" || header["required"] != nil {
		t.Errorf("got parameter %v, want the optional If-Match header", header)
	}
	responses, _ := op["responses"].(map[string]any)
	failed, _ := responses["412"].(map[string]any)
	if diff := cmp.Diff(errorContent(), failed["content"]); diff != "" {
		t.Errorf("412 content (-want +got):\n%s", diff)
	}
	if _, ok := responses["200"]; !ok {
		t.Error("the 200 response is gone")
	}
}

func TestApplyETag(t *testing.T) {
	etagHeader := func(t *testing.T, responses map[string]any, code string) {
		t.Helper()
		r, _ := responses[code].(map[string]any)
		headers, _ := r["headers"].(map[string]any)
		if _, ok := headers["ETag"]; !ok {
			t.Errorf("%s response headers = %v, want an ETag", code, headers)
		}
	}
	tests := []struct {
		name, method string
		success      int
		wantParams   []string
		wantCodes    []string
	}{
		{name: "GET may ask for a 304", method: "get", success: 200, wantParams: []string{"id", "If-None-Match"}, wantCodes: []string{"200", "304"}},
		{name: "PATCH only sends the tag", method: "patch", success: 200, wantParams: []string{"id"}, wantCodes: []string{"200"}},
		{name: "POST sends it on its own status", method: "post", success: 201, wantParams: []string{"id"}, wantCodes: []string{"201"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := map[string]any{
				"parameters": []any{map[string]any{"name": "id", "in": "path"}},
				"responses":  map[string]any{strconv.Itoa(tt.success): map[string]any{"description": "the thing"}},
			}
			if err := applyETag(tt.method, op, tt.success); err != nil {
				t.Fatal(err)
			}
			var params []string
			for _, p := range op["parameters"].([]any) {
				params = append(params, p.(map[string]any)["name"].(string))
			}
			if diff := cmp.Diff(tt.wantParams, params); diff != "" {
				t.Errorf("parameters (-want +got):\n%s", diff)
			}
			responses := op["responses"].(map[string]any)
			codes := slices.Sorted(maps.Keys(responses))
			if diff := cmp.Diff(tt.wantCodes, codes); diff != "" {
				t.Errorf("responses (-want +got):\n%s", diff)
			}
			etagHeader(t, responses, strconv.Itoa(tt.success))
		})
	}
	t.Run("missing success response is refused", func(t *testing.T) {
		if err := applyETag("get", map[string]any{"responses": map[string]any{"200": map[string]any{}}}, 201); err == nil {
			t.Error("an operation without its 201 response was accepted")
		}
	})
}

func TestApplySecurity(t *testing.T) {
	required := []any{map[string]any{"BearerAuth": []any{}}}
	anonymous := map[string]any{}
	tests := []struct {
		name, level string
		op, want    map[string]any
	}{
		{
			name: "public is anonymous", level: "ACCESS_PUBLIC",
			op:   map[string]any{"operationId": "Demo_Open"},
			want: map[string]any{"operationId": "Demo_Open", "security": []any{anonymous}},
		},
		{
			name: "optional is anonymous or the document's requirement", level: "ACCESS_OPTIONAL",
			op:   map[string]any{"operationId": "Demo_Maybe"},
			want: map[string]any{"operationId": "Demo_Maybe", "security": []any{anonymous, required[0]}},
		},
		{
			name: "required inherits the document's requirement", level: "ACCESS_REQUIRED",
			op:   map[string]any{"operationId": "Demo_Closed", "security": []any{anonymous}},
			want: map[string]any{"operationId": "Demo_Closed"},
		},
		{
			name: "no option is required", level: "",
			op:   map[string]any{"operationId": "Demo_Default", "security": []any{anonymous}},
			want: map[string]any{"operationId": "Demo_Default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applySecurity(tt.op, tt.level, required)
			if diff := cmp.Diff(tt.want, tt.op); diff != "" {
				t.Errorf("operation (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplySuccessStatus(t *testing.T) {
	body := map[string]any{"description": "the user"}
	tests := []struct {
		name    string
		code    int
		op      map[string]any
		want    map[string]any
		wantErr bool
	}{
		{
			name: "200 leaves the response",
			code: 200,
			op:   map[string]any{"responses": map[string]any{"200": body}},
			want: map[string]any{"responses": map[string]any{"200": body}},
		},
		{
			name: "201 moves the body",
			code: 201,
			op:   map[string]any{"responses": map[string]any{"200": body, "default": body}},
			want: map[string]any{"responses": map[string]any{"201": body, "default": body}},
		},
		{
			name: "204 drops the body",
			code: 204,
			op:   map[string]any{"responses": map[string]any{"200": body}},
			want: map[string]any{"responses": map[string]any{"204": map[string]any{"description": "No Content: the request succeeded and the body is empty."}}},
		},
		{
			name:    "missing 200 is refused",
			code:    201,
			op:      map[string]any{"responses": map[string]any{}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := applySuccessStatus(tt.op, tt.code)
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

// TestRun finalizes a document whose operations name the image's RPCs, as `make generate` does.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	imagePath, in, out := filepath.Join(dir, "image.binpb"), filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(imagePath, image(t, accessOption, successOption), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(in, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("security and success status follow the options", func(t *testing.T) {
		write(`{"security": [{"BearerAuth": []}], "paths": {
			"/things": {
				"get": {"operationId": "Demo_Open", "summary": "Open lists things. Public.", "responses": {"200": {"description": "the things"}}},
				"post": {"operationId": "Demo_Created", "responses": {"200": {"description": "the thing"}}}
			},
			"/things/{id}": {"delete": {"operationId": "Demo_NoContent", "responses": {"200": {"description": "nothing",
				"content": {"application/json": {"schema": {"$ref": "#/components/schemas/demo.v1.Empty"}}}}}}}
		}, "components": {"schemas": {"demo.v1.Empty": {"type": "object"}}}}`)
		if err := run(imagePath, in, out); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"security": []any{map[string]any{"BearerAuth": []any{}}}, "paths": map[string]any{
			"/things": map[string]any{
				"get": map[string]any{
					"operationId": "Demo_Open", "summary": "Open lists things.", "description": "Open lists things. Public.",
					"security": []any{map[string]any{}}, "responses": map[string]any{"200": map[string]any{"description": "the things"}},
				},
				"post": map[string]any{"operationId": "Demo_Created", "responses": map[string]any{"201": map[string]any{"description": "the thing"}}},
			},
			"/things/{id}": map[string]any{"delete": map[string]any{"operationId": "Demo_NoContent", "responses": map[string]any{
				"204": map[string]any{"description": "No Content: the request succeeded and the body is empty."},
			}}},
		}, "components": map[string]any{"schemas": map[string]any{}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("document (-want +got):\n%s", diff)
		}
	})
	t.Run("conditional requests follow the messages", func(t *testing.T) {
		write(`{"paths": {"/things/{id}": {
			"get": {"operationId": "Demo_Read", "responses": {"200": {"description": "the thing"}}},
			"patch": {"operationId": "Demo_Write", "responses": {"200": {"description": "the thing"}}}
		}}}`)
		if err := run(imagePath, in, out); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Paths map[string]map[string]struct {
				Parameters []struct{ Name, In string }
				Responses  map[string]struct{ Headers map[string]any }
			}
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		for method, want := range map[string]struct{ header, code string }{"get": {"If-None-Match", "304"}, "patch": {"If-Match", "412"}} {
			op := got.Paths["/things/{id}"][method]
			if len(op.Parameters) != 1 || op.Parameters[0].Name != want.header || op.Parameters[0].In != "header" {
				t.Errorf("%s parameters = %+v, want the %s header", method, op.Parameters, want.header)
			}
			if _, ok := op.Responses[want.code]; !ok {
				t.Errorf("%s has no %s response", method, want.code)
			}
			if _, ok := op.Responses["200"].Headers["ETag"]; !ok {
				t.Errorf("%s 200 has no ETag header", method)
			}
		}
	})
	t.Run("an operation of no RPC is refused", func(t *testing.T) {
		write(`{"paths": {"/x": {"get": {"operationId": "Demo_Missing", "responses": {"200": {}}}}}}`)
		if err := run(imagePath, in, out); err == nil {
			t.Error("an operationId that names no RPC was accepted")
		}
	})
}

// TestOptionalDeleteBody: a DELETE's body becomes optional; other methods' bodies stay as the
// generator made them.
func TestOptionalDeleteBody(t *testing.T) {
	for _, tt := range []struct {
		method string
		want   bool
	}{{"delete", false}, {"patch", true}, {"post", true}} {
		op := map[string]any{"requestBody": map[string]any{"required": true}}
		optionalDeleteBody(tt.method, op)
		if got := op["requestBody"].(map[string]any)["required"]; got != tt.want {
			t.Errorf("%s: required = %v, want %v", tt.method, got, tt.want)
		}
	}
}
