// Package deptest checks, from a package's own tests, what the package depends on and what its
// source names, so that a layer stays free of the layers it must not know: a domain package of
// transports, storage and the idempotency of requests (Domain).
package deptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Transport are the packages of the transports and of what runs around a call of the domain:
// HTTP, gRPC, the REST gateway, protobuf and the generated code of the protos, the server
// skeleton and its interceptors (idempotency, access). Each stands for the packages under it
// too.
var Transport = []string{
	"net/http",
	"net/rpc",
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"google.golang.org/genproto",
	"github.com/grpc-ecosystem",
	"github.com/fullstorydev/grpchan",
	"github.com/acme/shop/protos",
	"github.com/acme/shop/foundation/access",
	"github.com/acme/shop/foundation/gateway",
	"github.com/acme/shop/foundation/grpcserver",
	"github.com/acme/shop/foundation/idempotency",
	"github.com/acme/shop/foundation/serve",
	"github.com/acme/shop/foundation/service",
}

// Storage are the packages of databases: the SQL interface, gorm, the drivers, the migrations
// and the project's database helpers. Each stands for the packages under it too.
var Storage = []string{
	"database/sql",
	"gorm.io",
	"github.com/jackc/pgx",
	"github.com/glebarez",
	"github.com/go-gormigrate",
	"github.com/acme/shop/foundation/database",
}

// Domain fails t when the package under test, a domain, depends on a package of Transport or
// Storage, or names the idempotency of requests, which the API layer applies around the
// domain's calls.
func Domain(t testing.TB) {
	t.Helper()
	Forbid(t, slices.Concat(Transport, Storage)...)
	NotMentioned(t, "idempotency")
}

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
}

// list returns the package in the working directory (the package under test, as `go test`
// runs it) and every package it depends on, by import path.
func list(t testing.TB) (pkg, map[string]pkg) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json", ".")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	all := map[string]pkg{}
	var root pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		all[p.ImportPath] = p
		root = p // -deps lists a package after everything it imports: the last is the root
	}
	return root, all
}

// under reports whether path is one of prefixes, or a package under one.
func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// Forbid fails t for each package of forbidden (an import path, standing for the packages
// under it too) that the package under test depends on, directly or through others, naming the
// imports that lead there.
func Forbid(t testing.TB, forbidden ...string) {
	t.Helper()
	root, all := list(t)
	// Breadth first, so that the chain reported is a shortest one; a forbidden package is
	// reported and not entered, so that what it imports in turn is not reported too.
	from := map[string]string{root.ImportPath: ""}
	queue := []string{root.ImportPath}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if path != root.ImportPath && under(path, forbidden) {
			chain := []string{path}
			for p := from[path]; p != ""; p = from[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			t.Errorf("%s depends on %s: %s", root.ImportPath, path, strings.Join(chain, " imports "))
			continue
		}
		for _, imp := range all[path].Imports {
			if _, seen := from[imp]; !seen {
				from[imp] = path
				queue = append(queue, imp)
			}
		}
	}
}

// NotMentioned fails t for each line of the package under test's own source (its test files
// aside) that contains one of words, in any case.
func NotMentioned(t testing.TB, words ...string) {
	t.Helper()
	root, _ := list(t)
	for _, name := range slices.Concat(root.GoFiles, root.CgoFiles) {
		f, err := os.Open(filepath.Join(root.Dir, name)) //nolint:gosec // a source file of the package under test
		if err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(f)
		for n := 1; lines.Scan(); n++ {
			line := strings.ToLower(lines.Text())
			for _, w := range words {
				if strings.Contains(line, strings.ToLower(w)) {
					t.Errorf("%s:%d names %q: %s", name, n, w, strings.TrimSpace(lines.Text()))
				}
			}
		}
		err = lines.Err()
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
