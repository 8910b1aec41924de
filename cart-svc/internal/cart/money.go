package cart

import (
	"fmt"
	"strconv"
	"strings"
)

// Currency is the one currency the store sells in.
const Currency = "USD"

// MaxPriceCents is the highest unit price: 1,000,000.00.
const MaxPriceCents = 100_000_000

// Cents is an exact amount of money in minor units. Money is never a float.
type Cents int64

// String formats c as a decimal with exactly two fraction digits: "199.99", "-0.50".
func (c Cents) String() string {
	// Every cart line and total is formatted on every cart answer: strconv, not fmt.
	b := make([]byte, 0, 24)
	u := uint64(c) //nolint:gosec // two's complement on purpose: negated below when c < 0
	if c < 0 {
		b = append(b, '-')
		u = -u // two's complement: exact for every negative value, the smallest included
	}
	b = strconv.AppendUint(b, u/100, 10)
	return string(append(b, '.', byte('0'+u%100/10), byte('0'+u%10)))
}

// ParsePrice reads a positive price with at most two fraction digits ("12", "12.5", "12.50")
// no higher than MaxPriceCents.
func ParsePrice(s string) (Cents, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 7 || (hasFrac && (len(frac) == 0 || len(frac) > 2)) || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("price %q: want a decimal with at most two fraction digits", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	c := Cents(w*100 + f)
	if c <= 0 || c > MaxPriceCents {
		return 0, fmt.Errorf("price %q: must be greater than 0 and at most 1000000.00", s)
	}
	return c, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
