// Package clientnet says which client a per-address limit counts a caller as. An IPv4
// address is one client. An IPv6 address counts as its network of the first 64 bits (or of a
// configured prefix length): a subscriber is given at least a /64 and may take any address in
// it, so a limit per IPv6 address would let one client rotate through 2^64 buckets.
package clientnet

import "net/netip"

// DefaultIPv6Prefix is the prefix length of the network an IPv6 client counts as: a /64, the
// smallest network a subscriber is given. Operators whose clients get a /56 or a /48 each
// choose those.
const DefaultIPv6Prefix = 64

// MinIPv6Prefix and MaxIPv6Prefix bound the prefix lengths accepted: a /32 is a provider's
// whole allocation, and anything longer than a /64 lets a subscriber rotate addresses.
const (
	MinIPv6Prefix = 32
	MaxIPv6Prefix = 64
)

// Key returns what per-address limits count addr (an IP address without a port, as
// grpcserver.ClientAddr gives it) under: an IPv4 address, or an IPv4-mapped IPv6 one, is
// itself; an IPv6 address is its network of ipv6Prefix bits in CIDR form ("2001:db8:0:1::/64"),
// its zone dropped; anything else (a Unix socket's name, "unknown") is itself. An ipv6Prefix
// outside MinIPv6Prefix..MaxIPv6Prefix counts as DefaultIPv6Prefix.
func Key(addr string, ipv6Prefix int) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if ip.Is4() {
		return addr
	}
	if ip.Is4In6() {
		return ip.Unmap().String()
	}
	if ipv6Prefix < MinIPv6Prefix || ipv6Prefix > MaxIPv6Prefix {
		ipv6Prefix = DefaultIPv6Prefix
	}
	network, err := ip.WithZone("").Prefix(ipv6Prefix)
	if err != nil {
		return addr
	}
	return network.String()
}
