package envconf

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Origins is a comma-separated list of web origins ("https://shop.example,
// http://localhost:3000"): each exactly a scheme, http or https, a host name or IP address,
// and an optional port, nothing else; no wildcard, since a pattern such as
// https://*example.com would also match evilexample.com. Each is kept as browsers send it in
// the Origin header (lower case, no default port), so that an origin is compared whole. "*"
// allows any origin; production refuses it, and http:// origins (service.Settings).
type Origins []string

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Origins) UnmarshalText(b []byte) error {
	var out Origins
	for _, item := range List(string(b)) {
		if item != "*" {
			origin, ok := parseOrigin(item)
			if !ok {
				return fmt.Errorf("%q is not an origin: want scheme://host[:port] exactly, such as https://shop.example", item)
			}
			item = origin
		}
		out = append(out, item)
	}
	*o = out
	return nil
}

// parseOrigin returns s as browsers serialise an origin, or false when s is not exactly one.
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" || ip.Is6() != strings.HasPrefix(u.Host, "[") {
			return "", false
		}
		host = ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
	} else if !hostName(host) {
		return "", false
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		if (u.Scheme == "http" && n == 80) || (u.Scheme == "https" && n == 443) {
			port = ""
		} else {
			port = ":" + strconv.Itoa(n)
		}
	}
	return u.Scheme + "://" + host + port, true
}

// hostName reports whether s is a DNS host name in lower case: dot-separated labels of 1 to 63
// letters, digits and hyphens, neither starting nor ending with a hyphen.
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// Prefixes is a comma-separated list of CIDRs or single IP addresses ("10.0.0.0/8,
// 192.0.2.7"), a single address standing for itself alone.
type Prefixes []netip.Prefix

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Prefixes) UnmarshalText(b []byte) error {
	var out Prefixes
	for _, item := range List(string(b)) {
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return fmt.Errorf("%q is neither a CIDR nor an IP address", item)
			}
			prefix = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, prefix.Masked())
	}
	*p = out
	return nil
}

// String lists the prefixes as they are read.
func (p Prefixes) String() string {
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}
