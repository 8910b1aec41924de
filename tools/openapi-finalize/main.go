// Command openapi-finalize turns the merged OpenAPI document of one service into the one it
// serves: every operation that carries an `x-success-status` extension (set in the .proto with
// the openapiv3_operation option) gets its generated 200 response moved to that status, 204
// without a body, and the extension is removed. protoc-gen-openapiv3 documents every success as
// 200; the gateway answers 201 and 204 for those RPCs (see the services' gateway packages).
//
// Usage: openapi-finalize IN.json OUT.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

const extension = "x-success-status"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: openapi-finalize IN.json OUT.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-finalize:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in) //nolint:gosec // a build tool reading the file named on its command line
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, o := range ops {
			op, ok := o.(map[string]any)
			if !ok {
				continue
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
