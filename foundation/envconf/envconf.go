// Package envconf reads typed settings from environment variables, with defaults, and collects
// every problem so that a misconfigured service names all the variables to fix at once.
package envconf

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acme/shop/foundation/secret"
)

// Lookup looks a variable up, as os.LookupEnv does: set reports whether it is set, even to
// the empty string.
type Lookup func(name string) (value string, set bool)

// Map is an environment of the variables of m (tests).
func Map(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// Get returns the variable's value, "" when it is unset.
func (l Lookup) Get(name string) string {
	v, _ := l(name)
	return v
}

// Reader reads variables through a Lookup and remembers the errors it met.
type Reader struct {
	lookup     Lookup
	errs       []error
	devSecrets []string
}

// New returns a Reader that looks variables up with lookup (os.LookupEnv in production).
func New(lookup Lookup) *Reader {
	return &Reader{lookup: lookup}
}

// String returns the variable's value, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.lookup.Get(name)); v != "" {
		return v
	}
	return def
}

// Switchable returns the variable's value, def when it is unset, and "" when it is set to
// the empty string: for a setting with a default that an empty value switches off.
func (r *Reader) Switchable(name, def string) string {
	v, set := r.lookup(name)
	if !set {
		return def
	}
	return strings.TrimSpace(v)
}

// OneOf returns the variable's value, or def, and records an error unless it is one of allowed.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.String(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.Fail(name, "want one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

// Int returns the variable as an integer within [lo, hi], or def.
func (r *Reader) Int(name string, def, lo, hi int) int {
	s := r.String(name, "")
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		r.Fail(name, "want an integer from %d to %d, got %q", lo, hi, s)
		return def
	}
	return v
}

// Bool returns the variable as a boolean (true/false, 1/0, yes/no), or def.
func (r *Reader) Bool(name string, def bool) bool {
	switch strings.ToLower(r.String(name, "")) {
	case "":
		return def
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	default:
		r.Fail(name, "want true or false, got %q", r.lookup.Get(name))
		return def
	}
}

// Duration returns the variable as a positive Go duration ("10s", "15m"), or def.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	s := r.String(name, "")
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		r.Fail(name, "want a positive duration such as 10s, got %q", s)
		return def
	}
	return v
}

// DelayDuration returns the variable as a Go duration that may be zero ("0s", "2s"), or def.
func (r *Reader) DelayDuration(name string, def time.Duration) time.Duration {
	s := r.String(name, "")
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		r.Fail(name, "want a duration such as 0s or 5s, got %q", s)
		return def
	}
	return v
}

// Secret returns the variable as a signing secret of at least secret.MinLen bytes. When it is
// unset, development falls back to dev, a secret published in the source, which production
// refuses, as it refuses dev itself.
func (r *Reader) Secret(name, dev string, production bool) secret.Value {
	v := r.String(name, "")
	switch {
	case v == "" && production:
		r.Fail(name, "is required in production (a random string of at least %d bytes, e.g. `openssl rand -base64 48`)", secret.MinLen)
	case v == dev && production:
		r.Fail(name, "is the public development secret; production needs its own")
	case v == "":
		v = dev
		r.devSecrets = append(r.devSecrets, name)
	case len(v) < secret.MinLen:
		r.Fail(name, "must be at least %d bytes, got %d", secret.MinLen, len(v))
	}
	return secret.New(v)
}

// Origins reads a comma-separated list of web origins ("https://shop.example,
// http://localhost:3000"): each a scheme, http or https, and a host with an optional port,
// nothing else; "*" allows any origin. Empty is none.
func (r *Reader) Origins(name string) []string {
	var out []string
	for _, o := range strings.Split(r.String(name, ""), ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				r.Fail(name, "%q is not an origin: want scheme://host[:port], such as https://shop.example", o)
				continue
			}
			o = u.Scheme + "://" + u.Host
		}
		out = append(out, o)
	}
	return out
}

// Prefixes reads a comma-separated list of CIDRs or single IP addresses ("10.0.0.0/8,
// 192.0.2.7"), a single address standing for itself alone. Empty is none.
func (r *Reader) Prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range strings.Split(r.String(name, ""), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				r.Fail(name, "%q is neither a CIDR nor an IP address", f)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// DevSecrets names the variables whose Secret fell back to the public development secret, for
// the start-up log to warn about.
func (r *Reader) DevSecrets() []string { return r.devSecrets }

// Fail records a problem with a variable.
func (r *Reader) Fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Err returns every recorded problem joined into one error, or nil.
func (r *Reader) Err() error {
	return errors.Join(r.errs...)
}
