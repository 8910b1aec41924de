// Package token issues and parses the access tokens: JWTs signed with HMAC-SHA256
// (github.com/golang-jwt/jwt/v5). The algorithm is pinned on both sides: Issue signs with HS256
// only, and Parse accepts HS256 only, so "alg: none" and algorithm-confusion tokens fail.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/acme/shop/foundation/secret"

	"github.com/acme/shop/customers-svc/internal/customer"
)

// Issuer is the "iss" claim of every token.
const Issuer = "customers"

// JWT signs and verifies tokens with one secret.
type JWT struct {
	secret []byte
	parser *jwt.Parser
}

// New returns a JWT for secret. now is the clock that decides expiry; nil is time.Now.
func New(key secret.Value, now func() time.Time) (*JWT, error) {
	if now == nil {
		now = time.Now
	}
	if key.Len() < secret.MinLen {
		return nil, fmt.Errorf("token: the signing secret must be at least %d bytes", secret.MinLen)
	}
	return &JWT{
		secret: key.Reveal(),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(now),
		),
	}, nil
}

// Issue returns a signed token with sub, jti, iat and exp.
func (j *JWT) Issue(c customer.Claims, issuedAt, expiresAt time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   c.UserID,
		ID:        c.SessionID,
		IssuedAt:  jwt.NewNumericDate(issuedAt),
		ExpiresAt: jwt.NewNumericDate(expiresAt),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(j.secret)
}

// Parse verifies the token's signature, algorithm, issuer and times, and returns its claims.
func (j *JWT) Parse(token string) (customer.Claims, error) {
	var claims jwt.RegisteredClaims
	if _, err := j.parser.ParseWithClaims(token, &claims, j.key); err != nil {
		return customer.Claims{}, err
	}
	if claims.Subject == "" || claims.ID == "" {
		return customer.Claims{}, errors.New("token: sub and jti are required")
	}
	return customer.Claims{UserID: claims.Subject, SessionID: claims.ID}, nil
}

func (j *JWT) key(*jwt.Token) (any, error) { return j.secret, nil }
