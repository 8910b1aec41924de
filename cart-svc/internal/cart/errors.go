package cart

import (
	"errors"
	"strings"
)

// Errors the domain returns; the transport maps each to one status code.
var (
	// ErrProductNotFound means the product does not exist.
	ErrProductNotFound = errors.New("product not found")
	// ErrItemNotFound means the product is not in the cart.
	ErrItemNotFound = errors.New("product is not in the cart")
	// ErrPermissionDenied means the caller is authenticated but may not do this.
	ErrPermissionDenied = errors.New("permission denied")
)

// FieldError says what is wrong with one input field.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists the input fields that break a business rule.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "invalid input: " + strings.Join(parts, ", ")
}

// validate returns a ValidationError listing the non-nil problems, or nil if there are none.
func validate(problems ...*FieldError) error {
	var fields []FieldError
	for _, p := range problems {
		if p != nil {
			fields = append(fields, *p)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: fields}
}
