// Command openapi-finalize turns the merged OpenAPI document of one service into the one it
// serves. It reads two method options from a buf image of the protos (`buf build -o
// image.binpb`), so that the document and the services read one declaration per RPC; operations
// are matched to RPCs by their operationId, `Service_Method`.
//
//   - Every operation's `security` comes from its RPC's `(shop.v1.access)` option, as the
//     services' interceptor reads it: ACCESS_PUBLIC is `[{}]` (anonymous), ACCESS_OPTIONAL is
//     anonymous or the document's own requirement, and ACCESS_REQUIRED (the default) inherits
//     the document's requirement.
//   - Every operation whose RPC declares a `(shop.v1.success)` status gets its generated 200
//     response moved to that status (the number of the option's value), 204 without a body.
//     protoc-gen-openapiv3 documents every success as 200; the gateway answers with the
//     declared status (foundation/gateway).
//   - Every operation whose RPC declares `(shop.v1.idempotent) = true` gets the optional
//     `Idempotency-Key` header parameter, its 400, 409, 422 and 429 responses and the
//     `Idempotent-Replayed` header on its success response (foundation/idempotency).
//
// Two more come from the RPC's messages, as the services read them (AIP-154 etags):
//
//   - Every operation whose request message has an `etag` field gets the optional `If-Match`
//     header parameter and its 412 response (foundation/grpcserver.Precondition).
//   - Every operation whose response message, or its one singular message field, has an
//     `etag` field gets the `ETag` header on its success response and, for a GET, the optional
//     `If-None-Match` header parameter and its 304 response (foundation/gateway.forwardETag).
//
// Two more make the document read well (and pass Spectral's `spectral:oas` rules):
//
//   - Every operation's summary is the first sentence of its RPC's comment and its description
//     the whole comment; protoc-gen-openapiv3 puts a one-paragraph comment in the summary only.
//   - Component schemas that nothing refers to are removed: the empty responses of RPCs whose
//     success is a 204, which has no body to name them.
//
// The options are resolved from the image at run time, so this module does not import the
// generated code of protos/.
//
// Usage: openapi-finalize IMAGE.binpb IN.json OUT.json
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The method options read from the image. The first two are enums; each shop.v1.Success
// value's number is the HTTP status it stands for. The third is a bool.
const (
	accessOption     = "shop.v1.access"
	successOption    = "shop.v1.success"
	idempotentOption = "shop.v1.idempotent"
)

// Access levels, by the name of their shop.v1.Access value.
const (
	accessPublic   = "ACCESS_PUBLIC"
	accessOptional = "ACCESS_OPTIONAL"
)

// rpc is what an RPC's options declare about its REST operation.
type rpc struct {
	// access is the name of its shop.v1.Access value, or "" when it declares none.
	access string
	// success is the HTTP status of its success: 200 unless it declares another.
	success int
	// idempotent is whether it accepts an Idempotency-Key.
	idempotent bool
	// ifMatch is whether its request has an `etag` field, which If-Match fills.
	ifMatch bool
	// etag is whether its response is one resource whose `etag` is sent as the ETag header.
	etag bool
}

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
	rpcs, err := rpcsByOperation(rawImage)
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
			id, _ := op["operationId"].(string)
			r, ok := rpcs[id]
			if !ok {
				return fmt.Errorf("%s %s: operationId %q names no RPC", method, path, id)
			}
			describe(op)
			applySecurity(op, r.access, required)
			optionalDeleteBody(method, op)
			if err := applySuccessStatus(op, r.success); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
			if r.idempotent {
				if err := applyIdempotencyKey(op, r.success); err != nil {
					return fmt.Errorf("%s %s: %w", method, path, err)
				}
			}
			if r.ifMatch {
				applyIfMatch(op)
			}
			if r.etag {
				if err := applyETag(method, op, r.success); err != nil {
					return fmt.Errorf("%s %s: %w", method, path, err)
				}
			}
		}
	}
	pruneSchemas(doc)
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644) //nolint:gosec // a committed, world-readable document
}

// rpcsByOperation returns what every RPC of a buf image (or a FileDescriptorSet: an image is
// one with extra fields) declares, by operationId (`Service_Method`).
func rpcsByOperation(image []byte) (map[string]rpc, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(image, &set); err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, err
	}
	// The options were parsed without knowing the extensions, so their values sit among the
	// unknown fields; parsing them again with the extensions' types reads them.
	types := new(protoregistry.Types)
	access, err := extension(files, types, accessOption, protoreflect.EnumKind)
	if err != nil {
		return nil, err
	}
	success, err := extension(files, types, successOption, protoreflect.EnumKind)
	if err != nil {
		return nil, err
	}
	// An image of protos from before the option simply declares no idempotent RPC.
	idempotent, err := extension(files, types, idempotentOption, protoreflect.BoolKind)
	if err != nil && !errors.Is(err, protoregistry.NotFound) {
		return nil, err
	}
	out := map[string]rpc{}
	var errs []error
	for _, f := range set.GetFile() {
		for _, s := range f.GetService() {
			for _, m := range s.GetMethod() {
				id := s.GetName() + "_" + m.GetName()
				if _, dup := out[id]; dup {
					errs = append(errs, fmt.Errorf("two RPCs have the operationId %s", id))
					continue
				}
				r, err := declared(m.GetOptions(), access, success, idempotent, types)
				if err == nil {
					r.ifMatch, r.etag, err = conditional(files, m)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s.%s: %w", f.GetPackage(), id, err))
					continue
				}
				out[id] = r
			}
		}
	}
	return out, errors.Join(errs...)
}

// extension finds the extension name of kind (an enum or a bool option) in files and registers
// its type with types.
func extension(files *protoregistry.Files, types *protoregistry.Types, name protoreflect.FullName, kind protoreflect.Kind) (protoreflect.ExtensionTypeDescriptor, error) {
	d, err := files.FindDescriptorByName(name)
	if err != nil {
		return nil, fmt.Errorf("option %s: %w", name, err)
	}
	xd, ok := d.(protoreflect.ExtensionDescriptor)
	if !ok || xd.Kind() != kind {
		return nil, fmt.Errorf("%s is not a %v extension", name, kind)
	}
	xt := dynamicpb.NewExtensionType(xd)
	if err := types.RegisterExtension(xt); err != nil {
		return nil, err
	}
	return xt.TypeDescriptor(), nil
}

// declared returns what opts declare with the extensions access, success and idempotent
// (nil when the image lacks it), whose types are registered with types. An access number the
// enum does not name is an error; a success number it does not name, like none, is 200, as
// the gateway reads it.
func declared(opts *descriptorpb.MethodOptions, access, success, idempotent protoreflect.ExtensionTypeDescriptor, types *protoregistry.Types) (rpc, error) {
	r := rpc{success: http.StatusOK}
	b, err := proto.Marshal(opts)
	if err != nil {
		return r, err
	}
	// Parsed again as the image's own MethodOptions, the message the extensions extend.
	m := dynamicpb.NewMessage(access.ContainingMessage())
	if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(b, m); err != nil {
		return r, err
	}
	if m.Has(access) {
		n := m.Get(access).Enum()
		v := access.Enum().Values().ByNumber(n)
		if v == nil {
			return r, fmt.Errorf("unknown access value %d", n)
		}
		r.access = string(v.Name())
	}
	if n := m.Get(success).Enum(); n != 0 && success.Enum().Values().ByNumber(n) != nil {
		r.success = int(n)
	}
	if idempotent != nil {
		r.idempotent = m.Get(idempotent).Bool()
	}
	return r, nil
}

// conditional reports whether m's request message has an `etag` field (the precondition of a
// conditional write) and whether its response message carries one, as the gateway finds it:
// its own, or that of its one singular message field that has one (GetUserResponse.user).
func conditional(files *protoregistry.Files, m *descriptorpb.MethodDescriptorProto) (ifMatch, etag bool, err error) {
	message := func(name string) (protoreflect.MessageDescriptor, error) {
		d, err := files.FindDescriptorByName(protoreflect.FullName(strings.TrimPrefix(name, ".")))
		if err != nil {
			return nil, err
		}
		md, ok := d.(protoreflect.MessageDescriptor)
		if !ok {
			return nil, fmt.Errorf("%s is not a message", name)
		}
		return md, nil
	}
	in, err := message(m.GetInputType())
	if err != nil {
		return false, false, err
	}
	out, err := message(m.GetOutputType())
	if err != nil {
		return false, false, err
	}
	return hasETag(in), carriesETag(out), nil
}

// carriesETag reports whether a response message md is one resource with an entity tag: it has
// an `etag` field, or exactly one of its singular message fields does.
func carriesETag(md protoreflect.MessageDescriptor) bool {
	if hasETag(md) {
		return true
	}
	found := 0
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() == protoreflect.MessageKind && fd.Cardinality() != protoreflect.Repeated && !fd.IsMap() && hasETag(fd.Message()) {
			found++
		}
	}
	return found == 1
}

// hasETag reports whether md has a singular string field named `etag` (AIP-154).
func hasETag(md protoreflect.MessageDescriptor) bool {
	fd := md.Fields().ByName("etag")
	return fd != nil && fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated
}

// errorContent is the content of an error response: the document's google.rpc.Status.
func errorContent() map[string]any {
	return map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/google.rpc.Status"}}}
}

// responsesOf returns op's responses, adding an empty set when it has none.
func responsesOf(op map[string]any) map[string]any {
	responses, _ := op["responses"].(map[string]any)
	if responses == nil {
		responses = map[string]any{}
		op["responses"] = responses
	}
	return responses
}

// addHeader appends the optional header parameter name to op's parameters.
func addHeader(op map[string]any, name, description string, schema map[string]any) {
	params, _ := op["parameters"].([]any)
	op["parameters"] = append(params, map[string]any{"name": name, "in": "header", "description": description, "schema": schema})
}

// applyIfMatch adds the If-Match header parameter to op, a conditional write, and the response
// only a precondition can cause: 412 (the resource has changed since it was read).
func applyIfMatch(op map[string]any) {
	addHeader(op, "If-Match", "The ETag from a previous read: the request changes the resource only if it still has "+
		"that tag; a mismatch is a 412 and changes nothing. `*` only asks that the resource exists.",
		map[string]any{"type": "string"})
	responsesOf(op)["412"] = map[string]any{
		"description": "Precondition Failed: the resource no longer has the ETag named in If-Match (the ErrorInfo " +
			"reason `ETAG_MISMATCH`); nothing was changed. Read it again and decide.",
		"content": errorContent(),
	}
}

// applyETag adds the ETag header to op's success response (status success) and, when method is
// a GET, the If-None-Match header parameter and its 304 response.
func applyETag(method string, op map[string]any, success int) error {
	headers, err := successHeaders(op, success)
	if err != nil {
		return err
	}
	headers["ETag"] = map[string]any{
		"description": "The resource's entity tag, quoted: send it as If-Match to change the resource only if " +
			"nobody else has, or as If-None-Match to read it only if it has changed.",
		"schema": map[string]any{"type": "string"},
	}
	if method != "get" {
		return nil
	}
	addHeader(op, "If-None-Match", "The ETag from a previous read: if the resource still has it, the answer "+
		"is a 304 with no body.", map[string]any{"type": "string"})
	responsesOf(op)["304"] = map[string]any{"description": "Not Modified: the resource still has the ETag named in If-None-Match; the body is empty."}
	return nil
}

// successHeaders returns the headers of op's success response (status success), adding an
// empty set when it has none.
func successHeaders(op map[string]any, success int) (map[string]any, error) {
	ok, found := responsesOf(op)[strconv.Itoa(success)].(map[string]any)
	if !found {
		return nil, fmt.Errorf("no %d response to add a header to", success)
	}
	headers, _ := ok["headers"].(map[string]any)
	if headers == nil {
		headers = map[string]any{}
		ok["headers"] = headers
	}
	return headers, nil
}

// applyIdempotencyKey adds the Idempotency-Key header parameter to op, the
// Idempotent-Replayed header to its success response (status success), and the responses a key
// can cause: 400 (a malformed key, like any invalid request), 409 (the first request with the
// key is still running), 422 (the key was used for a different request) and 429 (the caller has
// as many live keys as it may, with Retry-After).
func applyIdempotencyKey(op map[string]any, success int) error {
	addHeader(op, "Idempotency-Key",
		"A key of 1 to 255 visible ASCII characters that makes the request safe to retry: a "+
			"repeat of the same request with the same key by the same caller within 24 hours answers "+
			"the first answer again (with the header `Idempotent-Replayed: true`) and changes nothing. "+
			"A malformed key is a 400.",
		map[string]any{"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"})
	headers, err := successHeaders(op, success)
	if err != nil {
		return err
	}
	headers["Idempotent-Replayed"] = map[string]any{
		"description": "`true` when this answer is a replay: the status and body of the first request with " +
			"this Idempotency-Key, sent again. Absent otherwise.",
		"schema": map[string]any{"type": "string", "enum": []any{"true"}},
	}
	responses := responsesOf(op)
	responses["400"] = map[string]any{
		"description": "Bad Request: the Idempotency-Key is malformed (empty, longer than 255 characters, or " +
			"not visible ASCII), or the request breaks a validation rule; nothing was changed.",
		"content": errorContent(),
	}
	responses["409"] = map[string]any{
		"description": "Conflict: the first request with this Idempotency-Key is still running; retry later.",
		"content":     errorContent(),
	}
	responses["422"] = map[string]any{
		"description": "Unprocessable Content: this Idempotency-Key was used for a different request.",
		"content":     errorContent(),
	}
	responses["429"] = map[string]any{
		"description": "Too Many Requests: the caller already has as many Idempotency-Keys of the last 24 " +
			"hours as it may (a new key is accepted once the oldest expires), or has made too many changes " +
			"in the service's write window; nothing was changed.",
		"headers": map[string]any{
			"Retry-After": map[string]any{
				"description": "How many seconds to wait before trying again.",
				"schema":      map[string]any{"type": "integer", "minimum": 1},
			},
		},
		"content": errorContent(),
	}
	return nil
}

// applySecurity sets op's security from the access level its RPC declares: anonymous for
// public, anonymous or required (the document's requirement) for optional, and for required
// nothing, so that the document's requirement applies.
func applySecurity(op map[string]any, level string, required []any) {
	anonymous := map[string]any{}
	switch level {
	case accessPublic:
		op["security"] = []any{anonymous}
	case accessOptional:
		op["security"] = append([]any{anonymous}, required...)
	default:
		delete(op, "security")
	}
}

// applySuccessStatus moves op's generated 200 response to code, its RPC's success status; a
// 204 response has no body.
func applySuccessStatus(op map[string]any, code int) error {
	if code == http.StatusOK {
		return nil
	}
	responses, _ := op["responses"].(map[string]any)
	ok200, found := responses["200"].(map[string]any)
	if !found {
		return fmt.Errorf("no 200 response to replace")
	}
	delete(responses, "200")
	if code == http.StatusNoContent {
		responses["204"] = map[string]any{"description": "No Content: the request succeeded and the body is empty."}
		return nil
	}
	responses[strconv.Itoa(code)] = ok200
	return nil
}

// optionalDeleteBody marks a DELETE's request body optional: the generator marks every body
// required, but a DELETE's carries what only some callers must send (the current password of
// users deleting their own account), and Swagger UI would otherwise insist on one.
func optionalDeleteBody(method string, op map[string]any) {
	if body, ok := op["requestBody"].(map[string]any); ok && method == "delete" {
		body["required"] = false
	}
}

// describe makes op's summary the first sentence of its RPC's comment and its description the
// whole comment. protoc-gen-openapiv3 splits a comment at its first blank line, and a
// one-paragraph comment (each of ours) lands in the summary alone, one long line in Swagger UI.
func describe(op map[string]any) {
	summary, _ := op["summary"].(string)
	description, _ := op["description"].(string)
	full := strings.TrimSpace(summary + "\n\n" + description)
	if full == "" {
		return
	}
	op["summary"] = firstSentence(summary)
	op["description"] = full
}

// firstSentence returns s up to the end of its first sentence (a period followed by a space or
// the end), on one line.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// pruneSchemas removes from doc the component schemas that nothing outside them refers to,
// directly or through other schemas.
func pruneSchemas(doc map[string]any) {
	const prefix = "#/components/schemas/"
	components, _ := doc["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	reached := map[string]bool{}
	var queue []string
	visit := func(v any) {
		eachRef(v, func(ref string) {
			if name, ok := strings.CutPrefix(ref, prefix); ok && !reached[name] {
				reached[name] = true
				queue = append(queue, name)
			}
		})
	}
	for k, v := range doc {
		if k != "components" {
			visit(v)
		}
	}
	for k, v := range components {
		if k != "schemas" {
			visit(v)
		}
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		visit(schemas[name])
	}
	for name := range schemas {
		if !reached[name] {
			delete(schemas, name)
		}
	}
}

// eachRef calls f with every `$ref` in v, a decoded JSON value.
func eachRef(v any, f func(ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if ref, ok := e.(string); ok && k == "$ref" {
				f(ref)
				continue
			}
			eachRef(e, f)
		}
	case []any:
		for _, e := range v {
			eachRef(e, f)
		}
	}
}
