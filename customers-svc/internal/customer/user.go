// Package customer is the customers service's domain: accounts, passwords, access tokens and
// who may do what. It knows nothing about gRPC, HTTP or SQL; it declares the small interfaces it
// needs (Store, Hasher, Tokens) and the adapters in other packages implement them.
package customer

import (
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/acme/shop/foundation/etag"
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

// ETag returns the user's entity tag: a hash of everything clients see of the account. Its
// updated_at changes with every write, to the microsecond the stores keep, so two states of
// one account never share a tag.
func (u User) ETag() string {
	return etag.Of(u.ID, u.Email, u.FirstName, u.LastName, strconv.FormatBool(u.IsAdmin),
		strconv.FormatInt(u.CreatedAt.UnixMicro(), 10), strconv.FormatInt(u.UpdatedAt.UnixMicro(), 10))
}

// Caller is the authenticated user a request acts for.
type Caller struct {
	UserID  string
	IsAdmin bool
	// SessionID is the jti of the token the request carries; Logout revokes it.
	SessionID string
	// Addr is the client's address, which the current-password checks are throttled by.
	Addr string
}

// NormalizeEmail trims and lower-cases an email address. Login uses it as it is; registration
// and changes also check the result with checkEmail.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// checkEmail accepts a normalised plain addr-spec ("user@example.com", no display name) whose
// domain has a dot. The protovalidate rules of customers/v1/user.proto bound the length and
// apply isEmail, which is laxer: it accepts "a@localhost" and "a..b@example.com". Lengths of
// passwords and names are the proto's rules alone.
func checkEmail(e string) error {
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@'):], ".") {
		return validation.Fail("email", "must be a valid email address")
	}
	return nil
}
