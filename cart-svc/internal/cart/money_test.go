package cart

import (
	"math"
	"testing"
)

func TestParsePrice(t *testing.T) {
	good := map[string]Cents{"0.01": 1, "1": 100, "1.5": 150, "199.99": 19999, "1000000": MaxPriceCents, "1000000.00": MaxPriceCents, "007.10": 710}
	for in, want := range good {
		got, err := ParsePrice(in)
		if err != nil || got != want {
			t.Errorf("ParsePrice(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0.00", "-1", "1.", ".5", "1.234", "1000000.01", "99999999", "1e3", "1,5", " 1", "NaN", "１"} {
		if got, err := ParsePrice(in); err == nil {
			t.Errorf("ParsePrice(%q) = %d, want an error", in, got)
		}
	}
}

func TestCentsString(t *testing.T) {
	for c, want := range map[Cents]string{0: "0.00", 5: "0.05", 19999: "199.99", MaxPriceCents * 99: "99000000.00", -50: "-0.50", -12345: "-123.45", math.MaxInt64: "92233720368547758.07", math.MinInt64: "-92233720368547758.08"} {
		if got := c.String(); got != want {
			t.Errorf("Cents(%d) = %q, want %q", int64(c), got, want)
		}
	}
}

func FuzzParsePrice(f *testing.F) {
	for _, s := range []string{"1", "199.99", "1000000.00", "0.001", "-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParsePrice(s)
		if err != nil {
			return
		}
		if c <= 0 || c > MaxPriceCents {
			t.Fatalf("ParsePrice(%q) = %d, out of range", s, c)
		}
		back, err := ParsePrice(c.String())
		if err != nil || back != c {
			t.Fatalf("round trip of %q: %q -> %d, %v", s, c.String(), back, err)
		}
	})
}
