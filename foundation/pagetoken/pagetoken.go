// Package pagetoken makes the opaque page tokens of list RPCs. A token carries the position to
// continue after and is bound to the query it was issued for; it is signed with HMAC-SHA256, so
// a token that was forged, altered, or issued for another query is rejected.
package pagetoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/acme/shop/foundation/secret"
	"github.com/acme/shop/foundation/validation"
)

// ErrInvalid means the token was not issued by this service for this query. It is a
// *validation.Error naming the request's page_token field, so a handler returns it as it is.
var ErrInvalid error = &validation.Error{Violations: []validation.Violation{{
	Field: "page_token", Description: "is not a token this service issued for this query",
}}}

// MaxLen is the longest token Decode looks at.
const MaxLen = 1024

const macLen = 16

// Codec encodes and decodes page tokens with one key.
type Codec struct {
	key []byte
}

// New returns a Codec signing with a key derived from secret for purpose ("customers page
// tokens v1"), so that page tokens never share a key with anything else the secret signs.
// Every replica must be given the same secret.
func New(s secret.Value, purpose string) *Codec {
	m := hmac.New(sha256.New, s.Reveal())
	m.Write([]byte(purpose))
	return &Codec{key: m.Sum(nil)}
}

type payload struct {
	After string `json:"a"`
	Query string `json:"q"`
}

// Encode returns the token of the page that starts after position after, for query (the
// list's filters, such as its search string).
func (c *Codec) Encode(after, query string) string {
	data, _ := json.Marshal(payload{After: after, Query: queryHash(query)})
	return base64.RawURLEncoding.EncodeToString(append(data, c.mac(data)...))
}

// Decode returns the position a token continues after, or ErrInvalid.
func (c *Codec) Decode(token, query string) (string, error) {
	if len(token) > MaxLen {
		return "", ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	// The decoder skips line breaks, and leaves padding bits unchecked: only the one spelling
	// Encode writes is a token, so that no two strings name the same page.
	if err != nil || len(raw) <= macLen || base64.RawURLEncoding.EncodeToString(raw) != token {
		return "", ErrInvalid
	}
	data, mac := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if !hmac.Equal(mac, c.mac(data)) {
		return "", ErrInvalid
	}
	var p payload
	if err := json.Unmarshal(data, &p); err != nil || p.After == "" || p.Query != queryHash(query) {
		return "", ErrInvalid
	}
	return p.After, nil
}

func (c *Codec) mac(data []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(data)
	return m.Sum(nil)[:macLen]
}

func queryHash(q string) string {
	sum := sha256.Sum256([]byte(q))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}
