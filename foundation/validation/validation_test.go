package validation_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/foundation/validation"
)

func TestFail(t *testing.T) {
	err := fmt.Errorf("add item: %w", validation.Fail("quantity", "must be at most 99"))
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatalf("errors.As(%v) found no *validation.Error", err)
	}
	want := []validation.Violation{{Field: "quantity", Description: "must be at most 99"}}
	if diff := cmp.Diff(want, verr.Violations); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

func TestFields(t *testing.T) {
	two := &validation.Error{Violations: []validation.Violation{{Field: "email"}, {Field: "last_name"}}}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"wrapped", fmt.Errorf("update: %w", two), []string{"email", "last_name"}},
		{"no validation error", errors.New("boom"), nil},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, validation.Fields(tt.err)); diff != "" {
				t.Errorf("Fields (-want +got):\n%s", diff)
			}
		})
	}
}
