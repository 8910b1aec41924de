// Package customer is the customers service's domain: accounts, passwords, access tokens and
// who may do what. It knows nothing about gRPC, HTTP or SQL; it declares the small interfaces it
// needs (Store, Hasher, Tokens) and the adapters in other packages implement them.
package customer

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acme/shop/foundation/validation"
)

// User is an account.
type User struct {
	ID           string
	Email        string
	PasswordHash string
	FirstName    string
	LastName     string
	IsAdmin      bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Caller is the authenticated user a request acts for.
type Caller struct {
	UserID  string
	IsAdmin bool
	// SessionID is the jti of the token the request carries; Logout revokes it.
	SessionID string
}

// Me is the user ID that means "the caller".
const Me = "me"

// Limits of the contract.
const (
	MaxEmailLen    = 254
	MinPasswordLen = 8
	MaxPasswordLen = 128
	MaxNameLen     = 100
)

// NormalizeEmail trims and lower-cases an email address. Login uses it as it is; registration
// and changes also check the result with checkEmail.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// checkEmail accepts a normalised plain addr-spec ("user@example.com", no display name) whose
// domain has a dot.
func checkEmail(e string) *validation.Violation {
	if e == "" || utf8.RuneCountInString(e) > MaxEmailLen {
		return &validation.Violation{Field: "email", Description: "must be a valid email address of at most 254 characters"}
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@'):], ".") {
		return &validation.Violation{Field: "email", Description: "must be a valid email address"}
	}
	return nil
}

func checkPassword(field, pw string) *validation.Violation {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen || n > MaxPasswordLen || !utf8.ValidString(pw) {
		return &validation.Violation{Field: field, Description: "must be 8 to 128 characters"}
	}
	return nil
}

func checkName(field, name string) *validation.Violation {
	if utf8.RuneCountInString(name) > MaxNameLen || !utf8.ValidString(name) {
		return &validation.Violation{Field: field, Description: "must be at most 100 characters"}
	}
	return nil
}
