// Package etag computes the entity tags of resources and checks the preconditions of
// conditional requests (RFC 9110 section 13, AIP-154). An entity tag here is a strong validator:
// a hash of everything a resource's representation shows, so it changes whenever the resource
// does. Messages carry it bare (`abc`, the AIP-154 `etag` field); HTTP headers quote it
// (`"abc"`).
package etag

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// ErrMismatch means a request's precondition (If-Match, or the `etag` of the request) does not
// match the resource's current entity tag; nothing was changed. Every service answers it with
// ABORTED and the ErrorInfo reason ETAG_MISMATCH (HTTP 412).
var ErrMismatch = errors.New("etag does not match the resource's current etag")

// Of returns the entity tag of a resource whose representation is made of parts: a hash of
// them, unambiguous (each part's length goes in), 22 URL-safe base64 characters.
func Of(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = h.Write(strconv.AppendInt(nil, int64(len(p)), 10))
		_, _ = h.Write([]byte{':'})
		_, _ = h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Quote returns the HTTP form of the bare tag t: `"t"`.
func Quote(t string) string { return `"` + t + `"` }

// Condition is the precondition of a conditional write. The zero value is no condition: the
// write is unconditional.
type Condition struct {
	set bool
	any bool
	// tags are the bare strong tags that match. Weak and malformed ones are dropped: a strong
	// comparison never matches them.
	tags []string
}

// None is no precondition.
var None = Condition{}

// Present reports whether c is a precondition at all.
func (c Condition) Present() bool { return c.set }

// Matches reports whether a resource whose current tag is current satisfies c. No condition is
// always satisfied; `*` is satisfied by any existing resource.
func (c Condition) Matches(current string) bool {
	if !c.set || c.any {
		return true
	}
	for _, t := range c.tags {
		if t == current {
			return true
		}
	}
	return false
}

// Check returns ErrMismatch unless c.Matches(current).
func (c Condition) Check(current string) error {
	if !c.Matches(current) {
		return ErrMismatch
	}
	return nil
}

// Field is the precondition of an AIP-154 `etag` request field: the bare tag, or, from
// clients that copy the header, its quoted form. Empty is no condition.
func Field(v string) Condition {
	if v == "" {
		return None
	}
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") || v == "*" {
		return IfMatch(v)
	}
	return Condition{set: true, tags: []string{v}}
}

// IfMatch parses the value of an If-Match header: `*` or a comma-separated list of entity
// tags, compared strongly (RFC 9110 section 13.1.1). Weak tags (`W/"x"`) and anything that is
// not a quoted tag match nothing, so a request carrying only those fails its precondition.
// Empty is no condition.
func IfMatch(h string) Condition {
	h = strings.TrimSpace(h)
	if h == "" {
		return None
	}
	c := Condition{set: true}
	if h == "*" {
		c.any = true
		return c
	}
	for _, part := range strings.Split(h, ",") {
		if t, ok := strong(strings.TrimSpace(part)); ok {
			c.tags = append(c.tags, t)
		}
	}
	return c
}

// NoneMatch reports whether the value of an If-None-Match header names current (`*` or one of
// its tags, compared weakly, RFC 9110 section 13.1.2): then a GET answers 304.
func NoneMatch(h, current string) bool {
	h = strings.TrimSpace(h)
	if h == "" || current == "" {
		return false
	}
	if h == "*" {
		return true
	}
	for _, part := range strings.Split(h, ",") {
		if t, ok := strong(strings.TrimPrefix(strings.TrimSpace(part), "W/")); ok && t == current {
			return true
		}
	}
	return false
}

// strong returns the bare tag of a quoted strong entity tag (`"abc"`).
func strong(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	t := s[1 : len(s)-1]
	if strings.ContainsAny(t, `" `) {
		return "", false
	}
	return t, true
}
