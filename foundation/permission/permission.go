// Package permission holds the authorization rules both services share: the error for an
// authenticated caller who may not do something, and who may act on a user's resources (their
// account, their cart). The gRPC server (package grpcserver) answers ErrDenied with
// PERMISSION_DENIED.
package permission

import (
	"errors"
	"strings"
)

// ErrDenied means the caller is authenticated but may not do this.
var ErrDenied = errors.New("permission denied")

// Me is the user ID that means "the caller".
const Me = "me"

// SelfOrAdmin resolves the user a request names (Me, the caller's own ID or another user's ID,
// in any letter case) to a user ID, and checks that the caller may act on that user: themselves,
// or anyone for an admin. Anyone else is ErrDenied, whether that user exists or not.
func SelfOrAdmin(callerID string, isAdmin bool, requested string) (string, error) {
	id := strings.ToLower(requested)
	if id == Me || id == callerID {
		return callerID, nil
	}
	if !isAdmin {
		return "", ErrDenied
	}
	return id, nil
}
