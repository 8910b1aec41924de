package envconf_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/shop/foundation/envconf"
	"github.com/acme/shop/foundation/secret"
)

const devSecret = "public-development-secret-0123456789"

// settings is a configuration with one setting of each kind.
type settings struct {
	Text    string        `env:"TEXT" default:"def" help:"A string."`
	Mode    string        `env:"MODE" default:"text" oneof:"text,json" help:"A choice."`
	Count   int           `env:"COUNT" default:"7" min:"1" max:"10" help:"A bounded integer."`
	Flag    bool          `env:"FLAG" default:"false" dev:"true" help:"On in development, refused in production."`
	Wait    time.Duration `env:"WAIT" default:"3s" help:"A positive duration."`
	Delay   time.Duration `env:"DELAY" default:"0s" min:"0s" help:"A duration that may be zero."`
	Addr    string        `env:"ADDR" empty:"off" help:"Off when set to the empty string."`
	Secret  secret.Value  `env:"SECRET" dev:"public-development-secret-0123456789" help:"A signing secret."`
	Names   []string      `env:"NAMES" help:"A list."`
	Origins envconf.Origins
	Nested  nested `envPrefix:"NESTED_"`
}

type nested struct {
	Origins envconf.Origins  `env:"ORIGINS" help:"Web origins."`
	Proxies envconf.Prefixes `env:"PROXIES" help:"Networks."`
}

func load(t *testing.T, env map[string]string, production bool) (settings, []string, error) {
	t.Helper()
	c := settings{Addr: ":1"}
	dev, err := envconf.Load(&c, "P_", envconf.Map(env), production)
	return c, dev, err
}

func TestLoadDefaults(t *testing.T) {
	c, dev, err := load(t, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Text != "def" || c.Mode != "text" || c.Count != 7 || !c.Flag || c.Wait != 3*time.Second || c.Delay != 0 || c.Addr != ":1" ||
		!c.Secret.Equal(devSecret) || c.Names != nil {
		t.Errorf("development defaults wrong: %+v", c)
	}
	if diff := cmp.Diff([]string{"P_SECRET"}, dev); diff != "" {
		t.Errorf("development secrets (-want +got):\n%s", diff)
	}
	c, _, err = load(t, map[string]string{"P_SECRET": strings.Repeat("s", 40)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flag {
		t.Error("production took development's default")
	}
}

func TestLoadValues(t *testing.T) {
	c, dev, err := load(t, map[string]string{
		"P_TEXT": " value ", "P_MODE": "JSON", "P_COUNT": "10", "P_FLAG": "no", "P_WAIT": "1m", "P_DELAY": "0s",
		"P_ADDR": "", "P_SECRET": strings.Repeat("s", 32), "P_NAMES": " a, b ,,",
		"P_NESTED_ORIGINS": " https://shop.example , http://localhost:3000/,*", "P_NESTED_PROXIES": "10.0.0.0/8, 192.0.2.7,fd00::/8",
		"TEXT": "unprefixed",
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := settings{
		Text: "value", Mode: "json", Count: 10, Flag: false, Wait: time.Minute, Addr: "", Secret: secret.New(strings.Repeat("s", 32)),
		Names:  []string{"a", "b"},
		Nested: nested{Origins: envconf.Origins{"https://shop.example", "http://localhost:3000", "*"}},
	}
	if got := c.Nested.Proxies.String(); got != "10.0.0.0/8,192.0.2.7/32,fd00::/8" {
		t.Errorf("proxies = %s", got)
	}
	c.Nested.Proxies = nil
	if diff := cmp.Diff(want, c, cmp.AllowUnexported(secret.Value{})); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if len(dev) != 0 {
		t.Errorf("development secrets %v, want none", dev)
	}
}

// TestLoadNamesEveryBadVariable: every bad variable is reported at once, by its name, and a
// secret's value never appears in the error.
func TestLoadNamesEveryBadVariable(t *testing.T) {
	_, _, err := load(t, map[string]string{
		"P_MODE": "loud", "P_COUNT": "11", "P_FLAG": "maybe", "P_WAIT": "-1s", "P_DELAY": "soon",
		"P_SECRET": "short-secret-value", "P_NESTED_ORIGINS": "ftp://x", "P_NESTED_PROXIES": "proxy.example",
	}, false)
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, name := range []string{"P_MODE", "P_COUNT", "P_FLAG", "P_WAIT", "P_DELAY", "P_SECRET", "P_NESTED_ORIGINS", "P_NESTED_PROXIES"} {
		if n := strings.Count(err.Error(), name+":"); n != 1 {
			t.Errorf("error names %s %d times, want once: %v", name, n, err)
		}
	}
	if strings.Contains(err.Error(), "short-secret-value") {
		t.Errorf("error prints the secret: %v", err)
	}
}

// TestBadOrigins: an origin is a scheme, a host and a port, exactly: no path, query or user,
// and no wildcard pattern (https://*example.com would match evilexample.com).
func TestBadOrigins(t *testing.T) {
	for _, bad := range []string{
		"https://shop.example/path", "ftp://x", "shop.example", "https://u:p@x.example", "https://x.example?q", "https://x.example?",
		"https://*example.com", "https://*.example.com", "http://*", "https://shop.*", "https://exa_mple.com", "https://-x.example",
		"https://x.example:", "https://x.example:0", "https://x.example:65536", "https://[fe80::1%25eth0]", "https://x.example#top",
		"https://shop..example",
	} {
		_, _, err := load(t, map[string]string{"P_NESTED_ORIGINS": "https://ok.example," + bad}, false)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("origin %q: error %v, want one naming it", bad, err)
		}
	}
}

// TestOriginsAreKeptAsBrowsersSendThem: an origin is compared whole with the Origin header,
// which browsers send in lower case and without the scheme's default port.
func TestOriginsAreKeptAsBrowsersSendThem(t *testing.T) {
	var o envconf.Origins
	in := "HTTPS://Shop.Example:443,http://localhost:3000,http://127.0.0.1:80,https://[2001:DB8::1]:8443,https://shop.example:8443/,*"
	if err := o.UnmarshalText([]byte(in)); err != nil {
		t.Fatal(err)
	}
	want := envconf.Origins{"https://shop.example", "http://localhost:3000", "http://127.0.0.1", "https://[2001:db8::1]:8443", "https://shop.example:8443", "*"}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("origins (-want +got):\n%s", diff)
	}
}

// TestProductionRefusesDevelopmentValues: production requires a setting that has only a
// development default, and refuses the development value however it is spelt.
func TestProductionRefusesDevelopmentValues(t *testing.T) {
	own := strings.Repeat("s", 40)
	for _, tc := range []struct {
		name, variable string
		env            map[string]string
	}{
		{"missing secret", "P_SECRET", nil},
		{"development secret", "P_SECRET", map[string]string{"P_SECRET": devSecret}},
		{"development flag", "P_FLAG", map[string]string{"P_SECRET": own, "P_FLAG": "true"}},
		{"development flag spelt otherwise", "P_FLAG", map[string]string{"P_SECRET": own, "P_FLAG": "YES"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := load(t, tc.env, true)
			if err == nil || !strings.Contains(err.Error(), tc.variable+":") {
				t.Errorf("error %v, want one naming %s", err, tc.variable)
			}
		})
	}
}

// TestSwitch: an unset variable is the default, one set to the empty string is off.
func TestSwitch(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{{nil, ":1"}, {map[string]string{"P_ADDR": ""}, ""}, {map[string]string{"P_ADDR": " "}, ""}, {map[string]string{"P_ADDR": " :9 "}, ":9"}} {
		c, _, err := load(t, tc.env, false)
		if err != nil || c.Addr != tc.want {
			t.Errorf("%v: Addr = %q (%v), want %q", tc.env, c.Addr, err, tc.want)
		}
	}
}

func TestDeclare(t *testing.T) {
	got, err := envconf.Declare(&settings{Addr: ":1"}, "P_")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	want := []string{"P_TEXT", "P_MODE", "P_COUNT", "P_FLAG", "P_WAIT", "P_DELAY", "P_ADDR", "P_SECRET", "P_NAMES", "P_NESTED_ORIGINS", "P_NESTED_PROXIES"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if s := got[6]; s.Default != ":1" || !s.Switch {
		t.Errorf("ADDR declared as %+v, want the struct's value as its default, switchable", s)
	}
	if s := got[7]; !s.Secret || !s.Required() {
		t.Errorf("SECRET declared as %+v, want a secret production requires", s)
	}

	type noHelp struct {
		X int `env:"X"`
	}
	type twice struct {
		A struct {
			X int `env:"X" help:"x"`
		} `envPrefix:"A_"`
		B struct {
			X int `env:"X" help:"x"`
		} `envPrefix:"B_"`
	}
	type badBound struct {
		X string `env:"X" min:"1" help:"x"`
	}
	for _, bad := range []any{&noHelp{}, &twice{}, &badBound{}, settings{}} {
		if _, err := envconf.Declare(bad, ""); err == nil {
			t.Errorf("Declare(%T) accepted it", bad)
		}
	}
}

// TestRender: the environment file and the Markdown table carry every setting with its
// default and its rules; a setting whose default depends on APP_ENV is left empty in the file.
func TestRender(t *testing.T) {
	got, err := envconf.Declare(&settings{Addr: ":1"}, "P_")
	if err != nil {
		t.Fatal(err)
	}
	file := envconf.EnvFile(got)
	for _, want := range []string{"\nP_COUNT=7\n", "# A bounded integer. From 1 to 10.\n", "\nP_FLAG=\n", "\nP_SECRET=\n", "P_ADDR=:1\n", "Empty switches it off."} {
		if !strings.Contains(file, want) {
			t.Errorf("environment file lacks %q:\n%s", want, file)
		}
	}
	table := envconf.Markdown(got)
	for _, want := range []string{"| `P_COUNT` | `7` | A bounded integer. From 1 to 10. |", "| `P_SECRET` | (none) |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	doc := "intro\n<!-- b -->\nold\n<!-- e -->\nrest\n"
	if out, err := envconf.Splice(doc, "<!-- b -->", "<!-- e -->", "new\n"); err != nil || out != "intro\n<!-- b -->\nnew\n<!-- e -->\nrest\n" {
		t.Errorf("Splice = %q, %v", out, err)
	}
	if _, err := envconf.Splice("no markers", "<!-- b -->", "<!-- e -->", ""); err == nil {
		t.Error("Splice without markers succeeded")
	}
}

// TestLogValue: every setting is logged under its name, the secret redacted by its type.
func TestLogValue(t *testing.T) {
	c, _, err := load(t, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	out := envconf.LogValue(&c, "P_").String()
	if !strings.Contains(out, "count=7") || !strings.Contains(out, "secret="+secret.Redacted) || strings.Contains(out, devSecret) {
		t.Errorf("log value = %s", out)
	}
	_ = slog.Any("settings", envconf.LogValue(&c, "P_"))
}
