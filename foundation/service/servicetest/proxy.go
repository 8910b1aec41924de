package servicetest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP address that stays the same while the server behind it stops and starts
// again: a test that restarts a server hands its clients the proxy's address, and the
// restarted server listens on a new port 0, rather than on its old port, which another
// process may have taken while it was down.
type Proxy struct {
	// Addr is where the proxy listens.
	Addr string

	mu      sync.Mutex
	backend string
	conns   map[net.Conn]struct{} // open on either side; closed when the test ends
	closed  bool
	wg      sync.WaitGroup
}

// NewProxy listens on a port of the loopback interface until the test ends, and forwards each
// connection to the address Forward set last. Without one, it closes the connection at once,
// as a client sees a server that is down.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: lis.Addr().String(), conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		_ = lis.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Go(func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return // closed when the test ends
			}
			if p.track(conn) {
				p.wg.Go(func() { p.serve(conn) })
			}
		}
	})
	return p
}

// track adds conn to the connections closed when the test ends, or closes it and reports false
// when the test has ended.
func (p *Proxy) track(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = conn.Close()
		return false
	}
	p.conns[conn] = struct{}{}
	return true
}

func (p *Proxy) untrack(conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, conn)
	_ = conn.Close()
}

// Forward sends new connections to addr; "" stands for a server that is down. Connections open
// to the previous server end when it closes them.
func (p *Proxy) Forward(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = addr
}

// Drop closes every connection open through the proxy, as a network failure would: clients
// must connect again.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// serve copies conn to and from the backend until either side closes, and then closes both.
func (p *Proxy) serve(conn net.Conn) {
	defer p.untrack(conn)
	p.mu.Lock()
	addr := p.backend
	p.mu.Unlock()
	if addr == "" {
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	backend, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil || !p.track(backend) {
		return
	}
	defer p.untrack(backend)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, backend); done <- struct{}{} }()
	<-done
}
