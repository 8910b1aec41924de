package gateway_test

import (
	"net/netip"
	"testing"

	"github.com/acme/shop/foundation/gateway"
)

// TestForwardedClient: X-Forwarded-For moves a client only when the connection comes from a
// trusted proxy, and then only to the rightmost address that is not a trusted proxy; whatever
// a client writes to the left of it (or sends directly) is never believed.
func TestForwardedClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name      string
		peer      string
		forwarded []string
		trusted   []netip.Prefix
		want      string
	}{
		{"no trusted proxies: the header is ignored", "10.0.0.5:4000", []string{"198.51.100.9"}, nil, "10.0.0.5:4000"},
		{"untrusted peer forging the header", "203.0.113.7:4000", []string{"198.51.100.9"}, trusted, "203.0.113.7:4000"},
		{"trusted proxy without a header", "10.0.0.5:4000", nil, trusted, "10.0.0.5:4000"},
		{"trusted proxy names the client", "10.0.0.5:4000", []string{"198.51.100.9"}, trusted, "198.51.100.9"},
		{"client-written entries left of the real one", "10.0.0.5:4000", []string{"1.2.3.4, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"chain of trusted proxies", "10.0.0.5:4000", []string{"198.51.100.9, 10.1.1.1", "10.2.2.2"}, trusted, "198.51.100.9"},
		{"garbage stops at the hop before it", "10.0.0.5:4000", []string{"garbage, 198.51.100.9"}, trusted, "198.51.100.9"},
		{"only garbage: the proxy itself", "10.0.0.5:4000", []string{"not-an-ip"}, trusted, "10.0.0.5:4000"},
		{"IPv6 proxy, IPv4-mapped client", "[fd00::1]:4000", []string{"::ffff:198.51.100.9"}, trusted, "198.51.100.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gateway.ForwardedClient(tt.peer, tt.forwarded, tt.trusted); got != tt.want {
				t.Errorf("ForwardedClient(%q, %q) = %q, want %q", tt.peer, tt.forwarded, got, tt.want)
			}
		})
	}
}
