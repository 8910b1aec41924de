package envconf

import (
	"strings"
	"testing"
	"time"
)

func TestReaderDefaultsAndValues(t *testing.T) {
	r := New(Map(map[string]string{
		"S": " value ", "I": "42", "B": "yes", "D": "3s", "O": "JSON",
	}))
	if got := r.String("S", "def"); got != "value" {
		t.Errorf("String = %q, want %q", got, "value")
	}
	if got := r.String("MISSING", "def"); got != "def" {
		t.Errorf("String(missing) = %q, want def", got)
	}
	if got := r.Int("I", 1, 0, 100); got != 42 {
		t.Errorf("Int = %d, want 42", got)
	}
	if got := r.Bool("B", false); !got {
		t.Errorf("Bool = false, want true")
	}
	if got := r.Duration("D", time.Second); got != 3*time.Second {
		t.Errorf("Duration = %v, want 3s", got)
	}
	if got := r.OneOf("O", "text", "text", "json"); got != "json" {
		t.Errorf("OneOf = %q, want json", got)
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
}

func TestReaderNamesEveryBadVariable(t *testing.T) {
	r := New(Map(map[string]string{
		"PORT": "99999", "FLAG": "maybe", "WAIT": "-1s", "MODE": "loud", "NUM": "x",
	}))
	r.Int("PORT", 1, 1, 65535)
	r.Bool("FLAG", false)
	r.Duration("WAIT", time.Second)
	r.OneOf("MODE", "a", "a", "b")
	r.Int("NUM", 1, 0, 10)
	err := r.Err()
	if err == nil {
		t.Fatal("Err = nil, want errors")
	}
	for _, name := range []string{"PORT", "FLAG", "WAIT", "MODE", "NUM"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestSecret(t *testing.T) {
	const dev = "public-development-secret-0123456789"
	const own = "an-own-secret-of-more-than-32-bytes-xyz"
	for name, tc := range map[string]struct {
		value      string
		production bool
		want       string
		wantErr    bool
	}{
		"dev default":             {"", false, dev, false},
		"own in development":      {own, false, own, false},
		"own in production":       {own, true, own, false},
		"missing in production":   {"", true, "", true},
		"dev value in production": {dev, true, "", true},
		"too short":               {"short", false, "", true},
	} {
		t.Run(name, func(t *testing.T) {
			r := New(Map(map[string]string{"K": tc.value}))
			got := r.Secret("K", dev, tc.production)
			err := r.Err()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "K:") || strings.Contains(err.Error(), tc.value) && tc.value != "" {
					t.Errorf("error %q should name K and never print the value", err)
				}
				return
			}
			if !got.Equal(tc.want) {
				t.Errorf("Secret = %q, want %q", got.Reveal(), tc.want)
			}
			if usesDev := len(r.DevSecrets()) == 1 && r.DevSecrets()[0] == "K"; usesDev != (tc.value == "") {
				t.Errorf("DevSecrets = %v for value %q", r.DevSecrets(), tc.value)
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	env := map[string]string{
		"GOOD": " https://shop.example , http://localhost:3000/,*",
		"BAD":  "https://shop.example/path,ftp://x,shop.example,https://u:p@x.example,https://x.example?q",
	}
	r := New(Map(env))
	got := r.Origins("GOOD")
	want := []string{"https://shop.example", "http://localhost:3000", "*"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Origins = %q, want %q", got, want)
	}
	if r.Err() != nil {
		t.Fatalf("good origins refused: %v", r.Err())
	}
	if r.Origins("UNSET") != nil {
		t.Error("an unset list is not empty")
	}
	r.Origins("BAD")
	err := r.Err()
	if err == nil {
		t.Fatal("bad origins accepted")
	}
	for _, bad := range []string{"https://shop.example/path", "ftp://x", "shop.example", "https://u:p@x.example", "https://x.example?q"} {
		if !strings.Contains(err.Error(), bad) {
			t.Errorf("error %q does not name %q", err, bad)
		}
	}
}

// TestPrefixes: CIDRs and single addresses are read, anything else is refused naming the
// variable.
func TestPrefixes(t *testing.T) {
	env := map[string]string{"GOOD": "10.0.0.0/8, 192.0.2.7,fd00::/8", "BAD": "10.0.0.0/8,proxy.example"}
	r := New(Map(env))
	var got []string
	for _, p := range r.Prefixes("GOOD") {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.7/32 fd00::/8"; strings.Join(got, " ") != want || r.Err() != nil {
		t.Errorf("Prefixes = %v (%v), want %s", got, r.Err(), want)
	}
	r.Prefixes("BAD")
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "BAD") || !strings.Contains(err.Error(), "proxy.example") {
		t.Errorf("error = %v, want one naming BAD and proxy.example", err)
	}
}

// TestSwitchable: an unset variable is the default, one set to the empty string is off.
func TestSwitchable(t *testing.T) {
	r := New(Map(map[string]string{"EMPTY": "", "BLANK": " ", "SET": " :9 "}))
	for _, tc := range []struct{ name, want string }{{"UNSET", ":1"}, {"EMPTY", ""}, {"BLANK", ""}, {"SET", ":9"}} {
		if got := r.Switchable(tc.name, ":1"); got != tc.want {
			t.Errorf("Switchable(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
