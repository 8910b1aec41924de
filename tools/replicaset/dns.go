package replicaset

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// ttl is the time to live of every answer, short as a cluster's DNS answers for a headless
// Service (CoreDNS: 5 s), so that nothing caches an address list for long.
const ttl = 5

// nameServer is a DNS server on loopback that answers A queries for the names it holds with
// their addresses, as a cluster's DNS answers a headless Service's name with the addresses of
// its ready pods. Any other type of query for a held name gets an empty answer, and an unknown
// name NXDOMAIN. It serves both UDP and TCP on one port, as resolvers expect.
type nameServer struct {
	// addr is where it listens ("127.0.0.1:41234").
	addr     string
	udp, tcp *dns.Server

	mu    sync.Mutex
	names map[string][]netip.Addr // by fully qualified, lower-case name
}

// startNameServer listens on addr (host:port; port 0 picks a port, the same for UDP and TCP)
// and serves until close.
func startNameServer(addr string) (*nameServer, error) {
	pc, lis, err := listenUDPAndTCP(addr)
	if err != nil {
		return nil, err
	}
	ns := &nameServer{addr: pc.LocalAddr().String(), names: map[string][]netip.Addr{}}
	ns.udp = &dns.Server{PacketConn: pc, Handler: ns}
	ns.tcp = &dns.Server{Listener: lis, Handler: ns}
	for _, srv := range []*dns.Server{ns.udp, ns.tcp} {
		started, failed := make(chan struct{}), make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { failed <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-failed:
			_, _ = pc.Close(), lis.Close()
			return nil, fmt.Errorf("DNS server: %w", err)
		}
	}
	return ns, nil
}

// listenUDPAndTCP opens a UDP socket and a TCP listener on one port of host. With port 0, the
// kernel picks the UDP port, and a few tries find one whose TCP twin is free too.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("DNS address %q: %w", addr, err)
	}
	var lc net.ListenConfig
	ctx := context.Background()
	for range 10 {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("DNS server: %w", err)
		}
		lis, err := lc.Listen(ctx, "tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, lis, nil
		}
		_ = pc.Close()
		if port != "0" {
			return nil, nil, fmt.Errorf("DNS server: %w", err)
		}
	}
	return nil, nil, errors.New("DNS server: no port free for both UDP and TCP")
}

// set makes name resolve to addrs; none makes it a name with no address (an empty answer).
func (ns *nameServer) set(name string, addrs []netip.Addr) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.names[dns.CanonicalName(name)] = append([]netip.Addr(nil), addrs...)
}

// lookup returns the addresses of name, and whether the server holds it.
func (ns *nameServer) lookup(name string) ([]netip.Addr, bool) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	addrs, ok := ns.names[dns.CanonicalName(name)]
	return addrs, ok
}

// ServeDNS implements dns.Handler.
func (ns *nameServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	addrs, ok := ns.lookup(q.Name)
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY:
		for _, a := range addrs {
			if !a.Is4() {
				continue
			}
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
				A:   a.AsSlice(),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// close stops both servers.
func (ns *nameServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(ns.udp.ShutdownContext(ctx), ns.tcp.ShutdownContext(ctx))
}
