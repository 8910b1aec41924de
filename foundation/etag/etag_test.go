package etag

import (
	"errors"
	"testing"
)

func TestOf(t *testing.T) {
	if Of("ab", "c") == Of("a", "bc") {
		t.Error("Of is ambiguous: the parts' boundaries do not count")
	}
	if a, b := Of("x", "y"), Of("x", "y"); a != b || len(a) != 22 {
		t.Errorf("Of = %q, %q: want the same 22 characters twice", a, b)
	}
}

func TestIfMatch(t *testing.T) {
	const cur = "abc"
	for _, tt := range []struct {
		header  string
		present bool
		matches bool
	}{
		{"", false, true},
		{"   ", false, true},
		{"*", true, true},
		{`"abc"`, true, true},
		{`"old", "abc"`, true, true},
		{` "abc" `, true, true},
		{`"old"`, true, false},
		{`W/"abc"`, true, false}, // weak never matches a strong comparison
		{`abc`, true, false},     // unquoted
		{`""`, true, false},
		{`"a bc"`, true, false},
		{`garbage`, true, false},
	} {
		c := IfMatch(tt.header)
		if c.Present() != tt.present || c.Matches(cur) != tt.matches {
			t.Errorf("IfMatch(%q): present %v matches %v, want %v %v", tt.header, c.Present(), c.Matches(cur), tt.present, tt.matches)
		}
		if err := c.Check(cur); (err == nil) != tt.matches || (err != nil && !errors.Is(err, ErrMismatch)) {
			t.Errorf("IfMatch(%q).Check = %v", tt.header, err)
		}
	}
}

func TestField(t *testing.T) {
	for v, matches := range map[string]bool{"abc": true, `"abc"`: true, "*": true, "old": false, `W/"abc"`: false} {
		if got := Field(v).Matches("abc"); got != matches {
			t.Errorf("Field(%q).Matches = %v, want %v", v, got, matches)
		}
	}
	if Field("").Present() {
		t.Error("an empty etag field is a condition")
	}
}

func TestNoneMatch(t *testing.T) {
	for h, want := range map[string]bool{
		`"abc"`: true, `W/"abc"`: true, `"x", "abc"`: true, "*": true,
		`"x"`: false, "": false, "abc": false,
	} {
		if got := NoneMatch(h, "abc"); got != want {
			t.Errorf("NoneMatch(%q) = %v, want %v", h, got, want)
		}
	}
	if NoneMatch("*", "") {
		t.Error("* matched a resource with no tag")
	}
}
