package cart

import (
	"errors"

	"github.com/acme/shop/foundation/validation"
)

// Errors the domain returns; the transport maps each to one status code. Invalid input is a
// *validation.Error and a caller acting beyond their rights permission.ErrDenied, as in every
// service.
var (
	// ErrProductNotFound means the product does not exist.
	ErrProductNotFound = errors.New("product not found")
	// ErrItemNotFound means the product is not in the cart.
	ErrItemNotFound = errors.New("product is not in the cart")
)

// validate returns a *validation.Error listing the non-nil problems, or nil if there are none.
func validate(problems ...*validation.Violation) error {
	var fields []validation.Violation
	for _, p := range problems {
		if p != nil {
			fields = append(fields, *p)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &validation.Error{Violations: fields}
}
