package clientnet_test

import (
	"testing"

	"github.com/acme/shop/foundation/clientnet"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		prefix     int
		want       string
	}{
		{"IPv4 is itself", "192.0.2.7", 64, "192.0.2.7"},
		{"IPv4-mapped IPv6 is its IPv4 address", "::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"IPv6 is its /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::/64"},
		{"another address of the /64", "2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"the next /64", "2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"a /56", "2001:db8:1:2ff::1", 56, "2001:db8:1:200::/56"},
		{"a /48", "2001:db8:1:ffff::1", 48, "2001:db8:1::/48"},
		{"the zone is dropped", "fe80::1:2%eth0", 64, "fe80::/64"},
		{"loopback", "::1", 64, "::/64"},
		{"prefix too long counts as /64", "2001:db8:1:2::1", 128, "2001:db8:1:2::/64"},
		{"no prefix counts as /64", "2001:db8:1:2::1", 0, "2001:db8:1:2::/64"},
		{"not an address", "unknown", 64, "unknown"},
		{"a Unix socket", "@", 64, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientnet.Key(tc.addr, tc.prefix); got != tc.want {
				t.Errorf("Key(%q, %d) = %q, want %q", tc.addr, tc.prefix, got, tc.want)
			}
		})
	}
}
