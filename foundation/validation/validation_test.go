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
