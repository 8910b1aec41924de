// Command openapi-finalize turns the merged OpenAPI document of one service into the one it
// serves:
//
//   - Every operation's `security` comes from its RPC's `(shop.v1.access)` option, read from a
//     buf image of the protos (`buf build -o image.binpb`), so that the document and the
//     services' interceptor read one declaration: ACCESS_PUBLIC is `[{}]` (anonymous),
//     ACCESS_OPTIONAL is anonymous or the document's own requirement, and ACCESS_REQUIRED (the
//     default) inherits the document's requirement. Operations are matched to RPCs by their
//     operationId, `Service_Method`.
//   - Every operation that carries an `x-success-status` extension (set in the .proto with the
//     openapiv3_operation option) gets its generated 200 response moved to that status, 204
//     without a body, and the extension is removed. protoc-gen-openapiv3 documents every
//     success as 200; the gateway answers 201 and 204 for those RPCs (foundation/gateway).
//
// The option is resolved from the image at run time, so this module does not import the
// generated code of protos/.
//
// Usage: openapi-finalize IMAGE.binpb IN.json OUT.json
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const (
	extension = "x-success-status"
	// accessOption is the method option that declares who may call an RPC.
	accessOption = "shop.v1.access"
)

// Access levels, by the name of their shop.v1.Access value.
const (
	accessPublic   = "ACCESS_PUBLIC"
	accessOptional = "ACCESS_OPTIONAL"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: openapi-finalize IMAGE.binpb IN.json OUT.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-finalize:", err)
		os.Exit(1)
	}
}

func run(image, in, out string) error {
	rawImage, err := os.ReadFile(image) //nolint:gosec // a build tool reading the file named on its command line
	if err != nil {
		return err
	}
	access, err := accessByOperation(rawImage)
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	raw, err := os.ReadFile(in) //nolint:gosec // as above
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	required, _ := doc["security"].([]any)
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, o := range ops {
			op, ok := o.(map[string]any)
			if !ok {
				continue
			}
			if err := applySecurity(op, access, required); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
			if err := applySuccessStatus(op); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644) //nolint:gosec // a committed, world-readable document
}

// accessByOperation returns the name of the access level every RPC of a buf image (or a
// FileDescriptorSet: an image is one with extra fields) declares, by operationId
// (`Service_Method`); an RPC without the option maps to "".
func accessByOperation(image []byte) (map[string]string, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(image, &set); err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, err
	}
	d, err := files.FindDescriptorByName(accessOption)
	if err != nil {
		return nil, fmt.Errorf("option %s: %w", accessOption, err)
	}
	xd, ok := d.(protoreflect.ExtensionDescriptor)
	if !ok || xd.Enum() == nil {
		return nil, fmt.Errorf("%s is not an enum extension", accessOption)
	}
	// The options were parsed without knowing the extension, so its value sits among their
	// unknown fields; parsing them again with the extension's type reads it.
	xt := dynamicpb.NewExtensionType(xd)
	types := new(protoregistry.Types)
	if err := types.RegisterExtension(xt); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var errs []error
	for _, f := range set.GetFile() {
		for _, s := range f.GetService() {
			for _, m := range s.GetMethod() {
				id := s.GetName() + "_" + m.GetName()
				if _, dup := out[id]; dup {
					errs = append(errs, fmt.Errorf("two RPCs have the operationId %s", id))
					continue
				}
				level, err := declared(m.GetOptions(), xt.TypeDescriptor(), types)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s.%s: %w", f.GetPackage(), id, err))
					continue
				}
				out[id] = level
			}
		}
	}
	return out, errors.Join(errs...)
}

// declared returns the name of the access value that opts set with the extension xd, or "".
func declared(opts *descriptorpb.MethodOptions, xd protoreflect.ExtensionTypeDescriptor, types *protoregistry.Types) (string, error) {
	b, err := proto.Marshal(opts)
	if err != nil {
		return "", err
	}
	// Parsed again as the image's own MethodOptions, the message the extension extends.
	m := dynamicpb.NewMessage(xd.ContainingMessage())
	if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(b, m); err != nil {
		return "", err
	}
	if !m.Has(xd) {
		return "", nil
	}
	n := m.Get(xd).Enum()
	v := xd.Enum().Values().ByNumber(n)
	if v == nil {
		return "", fmt.Errorf("unknown access value %d", n)
	}
	return string(v.Name()), nil
}

// applySecurity sets op's security from the access its RPC declares: anonymous for public,
// anonymous or required (the document's requirement) for optional, and for required nothing,
// so that the document's requirement applies.
func applySecurity(op map[string]any, access map[string]string, required []any) error {
	id, _ := op["operationId"].(string)
	level, ok := access[id]
	if !ok {
		return fmt.Errorf("operationId %q names no RPC", id)
	}
	anonymous := map[string]any{}
	switch level {
	case accessPublic:
		op["security"] = []any{anonymous}
	case accessOptional:
		op["security"] = append([]any{anonymous}, required...)
	default:
		delete(op, "security")
	}
	return nil
}

func applySuccessStatus(op map[string]any) error {
	v, ok := op[extension]
	if !ok {
		return nil
	}
	delete(op, extension)
	code, ok := v.(float64)
	if !ok || (code != 201 && code != 204) {
		return fmt.Errorf("%s must be 201 or 204, got %v", extension, v)
	}
	responses, _ := op["responses"].(map[string]any)
	ok200, found := responses["200"].(map[string]any)
	if !found {
		return fmt.Errorf("no 200 response to replace")
	}
	delete(responses, "200")
	if code == 204 {
		responses["204"] = map[string]any{"description": "No Content: the request succeeded and the body is empty."}
		return nil
	}
	responses[strconv.Itoa(int(code))] = ok200
	return nil
}
