// Package validation is the one error type for a request that breaks an input rule, whether
// the rule is a protovalidate rule of a .proto or a business rule of a service's domain. The
// gRPC server (package grpcserver) answers it with INVALID_ARGUMENT and a google.rpc.BadRequest
// detail holding one field violation per Violation.
package validation

import (
	"errors"
	"strings"
)

// Violation says what is wrong with one field of a request.
type Violation struct {
	// Field is the field's path in the request, such as "email" or "items[0].quantity".
	Field string
	// Description says what is wrong, for the caller to read.
	Description string
}

// Error is a request that breaks one or more input rules: one Violation per bad field.
type Error struct {
	Violations []Violation
}

func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return "invalid request: " + strings.Join(parts, ", ")
}

// Fail returns an *Error for one bad field.
func Fail(field, description string) error {
	return &Error{Violations: []Violation{{Field: field, Description: description}}}
}

// Fields returns the fields that the *Error in err's chain names, in order, or nil when err is
// no validation error.
func Fields(err error) []string {
	var verr *Error
	if !errors.As(err, &verr) {
		return nil
	}
	fields := make([]string, len(verr.Violations))
	for i, v := range verr.Violations {
		fields[i] = v.Field
	}
	return fields
}
