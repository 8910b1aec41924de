package customer

import (
	"errors"
	"fmt"
	"time"
)

// Errors the domain returns; the transport maps each to one status code. Invalid input is a
// *validation.Error and a caller acting beyond their rights permission.ErrDenied, as in every
// service.
var (
	// ErrNotFound means the user does not exist.
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken means another user has the email address.
	ErrEmailTaken = errors.New("email address is already taken")
	// ErrUnauthenticated means the credentials or the token are not valid. It never says why.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrLastAdmin means the change would leave no admin: the last admin cannot be demoted or
	// deleted.
	ErrLastAdmin = errors.New("the last admin cannot be demoted or deleted")
)

// ThrottledError means the caller made too many attempts (failed logins, registrations) and
// must wait.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many attempts, retry after %s", e.RetryAfter)
}
