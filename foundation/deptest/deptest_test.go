package deptest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/acme/shop/foundation/deptest"
)

// recorder is a test whose errors are kept, not reported.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestForbid checks this package's own dependencies: it imports encoding/json, os and os/exec,
// nothing of HTTP, gRPC or databases.
func TestForbid(t *testing.T) {
	for _, tt := range []struct {
		name      string
		forbidden []string
		want      []string // each a substring of one error, in order
	}{
		{"packages it does not use", []string{"net/http", "google.golang.org/grpc"}, nil},
		{"a direct import", []string{"encoding/json"}, []string{"depends on encoding/json: github.com/acme/shop/foundation/deptest imports encoding/json"}},
		{"a path stands for the packages under it", []string{"os"}, []string{"depends on os: ", "depends on os/exec: "}},
		{"a prefix is a whole path element", []string{"encoding/js"}, nil},
		{"transport", deptest.Transport, nil},
		{"storage", deptest.Storage, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			deptest.Forbid(r, tt.forbidden...)
			if len(r.errs) != len(tt.want) {
				t.Fatalf("errors %q, want %d", r.errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(r.errs[i], w) {
					t.Errorf("error %q, want it to contain %q", r.errs[i], w)
				}
			}
		})
	}
}

// TestNotMentioned reads this package's source, which names NotMentioned, and not its tests,
// which alone name a zebra.
func TestNotMentioned(t *testing.T) {
	r := &recorder{TB: t}
	deptest.NotMentioned(r, "zebra")
	if len(r.errs) != 0 {
		t.Errorf("errors %q, want none: test files are not the package's source", r.errs)
	}
	deptest.NotMentioned(r, "notmentioned")
	if len(r.errs) == 0 || !strings.Contains(r.errs[0], "deptest.go:") {
		t.Errorf("errors %q, want the lines of deptest.go that name NotMentioned", r.errs)
	}
}
