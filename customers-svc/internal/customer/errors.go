package customer

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors the domain returns; the transport maps each to one status code.
var (
	// ErrNotFound means the user does not exist.
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken means another user has the email address.
	ErrEmailTaken = errors.New("email address is already taken")
	// ErrPermissionDenied means the caller is authenticated but may not do this.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnauthenticated means the credentials or the token are not valid. It never says why.
	ErrUnauthenticated = errors.New("unauthenticated")
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

// ThrottledError means the caller made too many failed attempts and must wait.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed attempts, retry after %s", e.RetryAfter)
}
