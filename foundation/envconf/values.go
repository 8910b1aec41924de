package envconf

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Origins is a comma-separated list of web origins ("https://shop.example,
// http://localhost:3000"): each a scheme, http or https, and a host with an optional port,
// nothing else; "*" allows any origin.
type Origins []string

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Origins) UnmarshalText(b []byte) error {
	var out Origins
	for _, item := range List(string(b)) {
		if item != "*" {
			u, err := url.Parse(item)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("%q is not an origin: want scheme://host[:port], such as https://shop.example", item)
			}
			item = u.Scheme + "://" + u.Host
		}
		out = append(out, item)
	}
	*o = out
	return nil
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
